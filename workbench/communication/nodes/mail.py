"""``SendEMail@1``: an e-mail through the SMTP server of an ``EMailSender`` configuration entity.

The entity gives host, port, username, password and isSslEnabled; the adapter's credentials file
may add ``password``, ``caFile`` (to trust a private CA) and ``securityMode``. Security:
``isSslEnabled`` means TLS from the first byte on port 465 (the default port then) and STARTTLS
on any other port; without it the connection is plain. ``securityMode`` (None, SslOnConnect,
StartTls) overrides that. Recipients, subject and body are templates filled from the data
context as by ``FormatString@1`` (``{name}`` and ``{name:spec}``, each name given a path in
``arguments``).
"""

from __future__ import annotations

import smtplib
import ssl
from email.message import EmailMessage
from email.utils import getaddresses
from typing import Any, ClassVar

from workbench.communication.datacontext import DataContext
from workbench.communication.node import ExecutionEnvironment, Node
from workbench.communication.nodes.values import ARGUMENTS_SCHEMA, fill_template
from workbench.communication.protocols.connections import resolve_connection
from workbench.communication.schema import enum_schema, enum_value

__all__ = ["NODES", "smtp_security"]

SENDER_TYPE = "System.Communication/EMailSender"
_SECURITY = ["None", "SslOnConnect", "StartTls"]
_ADDRESSES = {
    "type": ["string", "array"],
    "items": {"type": "string"},
    "description": "addresses (templates; a string may hold several, comma-separated)",
}
_PATH = {"type": "string", "description": "a JSONPath ($.a.b)"}


def smtp_security(settings: dict[str, Any]) -> tuple[str, int]:
    """The security mode (None, SslOnConnect, StartTls) and port of resolved EMailSender
    ``settings``."""
    mode = settings.get("securityMode")
    port = settings.get("port")
    if mode:
        chosen = enum_value(mode, _SECURITY)
        if chosen not in _SECURITY:
            raise ValueError(
                f"EMailSender securityMode {mode!r} is not one of {', '.join(_SECURITY)}"
            )
    elif settings.get("isSslEnabled"):
        chosen = "SslOnConnect" if port in (None, "", 465, "465") else "StartTls"
    else:
        chosen = "None"
    default = 465 if chosen == "SslOnConnect" else 587 if chosen == "StartTls" else 25
    return chosen, int(port or default)


def _send(
    settings: dict[str, Any], message: EmailMessage, recipients: list[str], timeout: float
) -> None:
    host = settings.get("host")
    name = settings.get("name") or settings.get("rtWellKnownName") or settings.get("rtId")
    if not host:
        raise ValueError(f"EMailSender {name!r} has no host: set its Host")
    mode, port = smtp_security(settings)
    tls = ssl.create_default_context(cafile=settings.get("caFile"))
    smtp: smtplib.SMTP
    if mode == "SslOnConnect":
        smtp = smtplib.SMTP_SSL(str(host), port, timeout=timeout, context=tls)
    else:
        smtp = smtplib.SMTP(str(host), port, timeout=timeout)
    with smtp:
        if mode == "StartTls":
            smtp.starttls(context=tls)
        if settings.get("username"):
            smtp.login(str(settings["username"]), str(settings.get("password") or ""))
        smtp.send_message(message, to_addrs=recipients)


def _text(value: bytes | str) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else value


class SendEMail(Node):
    """Sends an e-mail through the ``emailSender`` configuration (EMailSender: SMTP host, port,
    TLS, login): ``to``/``cc``/``bcc`` (or the addresses at ``toPath``), ``subject`` and ``body``
    (``bodyFormat`` Text or Html) are templates filled from the data context by ``arguments``.
    ``targetPath`` receives ``{recipients, subject}``."""

    type_name = "SendEMail@1"
    properties: ClassVar[dict[str, Any]] = {
        "emailSender": {
            "type": "string",
            "description": "the EMailSender configuration (rtId, rtWellKnownName or name)",
        },
        "from": {"type": "string", "description": "the sender address (template)"},
        "to": _ADDRESSES,
        "toPath": {**_PATH, "description": "path of more recipient addresses"},
        "cc": _ADDRESSES,
        "bcc": _ADDRESSES,
        "subject": {"type": "string", "description": 'e.g. "Meter {meter}: {value:.1f} kWh"'},
        "body": {"type": "string", "description": "the text (template)"},
        "bodyFormat": enum_schema(["Text", "Html"], "Text (default) or Html"),
        "arguments": ARGUMENTS_SCHEMA,
        "timeoutSeconds": {"type": "number", "exclusiveMinimum": 0},
    }
    required = ("emailSender", "from", "subject")

    def _fill(self, values: dict[str, Any], name: str) -> str:
        return fill_template(self, str(self.prop(name, "")), values, name)

    def _addresses(self, values: dict[str, Any], name: str) -> list[str]:
        given = self.prop(name) or []
        texts = [given] if isinstance(given, str) else list(given)
        filled = [fill_template(self, str(t), values, name) for t in texts]
        return [address for _, address in getaddresses(filled) if address]

    async def run(self, context: DataContext, env: ExecutionEnvironment) -> None:
        values = {a["name"]: context.get(a["path"]) for a in self.prop("arguments", [])}
        to = self._addresses(values, "to")
        if "toPath" in self.props:
            found = context.get(self.prop("toPath"))
            items = found if isinstance(found, list) else [] if found is None else [found]
            to += [address for _, address in getaddresses([str(i) for i in items]) if address]
        cc, bcc = self._addresses(values, "cc"), self._addresses(values, "bcc")
        if not (to or cc or bcc):
            raise self.error("no recipient: give to, toPath, cc or bcc", "to")
        message = EmailMessage()
        message["From"] = self._fill(values, "from")
        if to:
            message["To"] = ", ".join(to)
        if cc:
            message["Cc"] = ", ".join(cc)
        message["Subject"] = self._fill(values, "subject")
        body = self._fill(values, "body")
        if self.enum("bodyFormat", ["Text", "Html"], "Text") == "Html":
            message.set_content(body, subtype="html")
        else:
            message.set_content(body)
        settings = resolve_connection(
            self.prop("emailSender"), SENDER_TYPE, env.configurations, env.tenant
        )
        timeout = float(self.prop("timeoutSeconds", 30))
        server = f"{settings.get('host')}:{settings.get('port') or ''}".rstrip(":")
        try:
            await env.call(_send, settings, message, [*to, *cc, *bcc], timeout)
        except smtplib.SMTPAuthenticationError as exc:
            raise self.error(
                f"the SMTP server {server} refused the login of {settings.get('username')!r}: "
                f"{exc.smtp_code} {_text(exc.smtp_error)}; check the "
                "EMailSender's username and password",
                "emailSender",
            ) from exc
        except smtplib.SMTPRecipientsRefused as exc:
            raise self.error(
                f"the SMTP server {server} refused the recipients {sorted(exc.recipients)}",
                "to",
            ) from exc
        except (smtplib.SMTPException, OSError, ValueError) as exc:
            raise self.error(
                f"sending through the SMTP server {server} failed: {type(exc).__name__}: {exc}",
                "emailSender",
            ) from exc
        if "targetPath" in self.props:
            self.write(context, {"recipients": [*to, *cc, *bcc], "subject": message["Subject"]})


NODES = [SendEMail]
