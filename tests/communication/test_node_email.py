"""SendEMail@1 against a real SMTP server (aiosmtpd) started here on loopback: plain, STARTTLS
with a login, TLS from the first byte; recipients, subject and body filled from the data
context; a refused login or an unreachable server fails naming the server and the fix."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from workbench.communication import build_pipeline
from workbench.communication.node import ExecutionEnvironment
from workbench.communication.nodes.mail import smtp_security
from workbench.communication.protocols.connections import CREDENTIALS_ENV
from workbench.testing.smtp import Mailbox, make_test_certificates

SEND = """
triggers: [{type: FromExecutePipelineCommand@1}]
transformations:
  - type: SendEMail@1
    emailSender: plantMail
    from: "alerts@plant.example"
    to: ["{owner}", "Shift Lead <lead@plant.example>"]
    toPath: $.watchers
    bcc: audit@plant.example
    subject: "Meter {meter}: {value:.1f} kWh"
    body: "Meter {meter} read {value} kWh at {at}."
    arguments:
      - {name: meter, path: $.reading.meter}
      - {name: value, path: $.reading.kWh}
      - {name: at, path: $.reading.timestamp}
      - {name: owner, path: $.owner}
    targetPath: $.sent
"""

DATA = {
    "reading": {"meter": "m7", "kWh": 12.345, "timestamp": "2026-03-01T10:00:00Z"},
    "owner": "owner@plant.example",
    "watchers": ["a@plant.example", "b@plant.example"],
}


def _sender(port: int, **extra: Any) -> dict[str, Any]:
    return {
        "rtId": "65f00000000000000000d001",
        "ckTypeId": "System.Communication/EMailSender",
        "rtWellKnownName": "plantMail",
        "name": "plant mail",
        "host": "127.0.0.1",
        "port": port,
        **extra,
    }


def _send(configuration: dict[str, Any], data: Any = DATA, definition: str = SEND) -> Any:
    pipeline = build_pipeline(definition, name="mail")
    env = ExecutionEnvironment(configurations=[configuration])
    return asyncio.run(pipeline.execute(data, env))


@pytest.fixture
def certificates(tmp_path: Path) -> tuple[Path, Path, Path]:
    return make_test_certificates(tmp_path)


@pytest.fixture
def plain() -> Iterator[Mailbox]:
    with Mailbox() as mailbox:
        yield mailbox


def test_templated_mail_through_a_plain_server(plain: Mailbox) -> None:
    result = _send(_sender(plain.port))
    assert result.status == "Completed", result.error
    [message] = plain.messages
    assert message["Subject"] == "Meter m7: 12.3 kWh"
    assert message["From"] == "alerts@plant.example"
    assert message["To"] == (
        "owner@plant.example, lead@plant.example, a@plant.example, b@plant.example"
    )
    assert message["Bcc"] is None  # blind copies are in the envelope only
    assert message.get_payload().strip() == "Meter m7 read 12.345 kWh at 2026-03-01T10:00:00Z."
    assert sorted(plain.recipients[0]) == sorted(
        [
            "owner@plant.example",
            "lead@plant.example",
            "a@plant.example",
            "b@plant.example",
            "audit@plant.example",
        ]
    )
    assert result.output["sent"]["subject"] == "Meter m7: 12.3 kWh"


def test_starttls_with_login_password_from_the_adapters_credentials(
    certificates: tuple[Path, Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ca, cert, key = certificates
    with Mailbox(tls="starttls", cert=cert, key=key, login=("plant", "s3cret")) as mailbox:
        credentials = tmp_path / "credentials.json"
        credentials.write_text(json.dumps({"plantMail": {"caFile": str(ca)}}))
        monkeypatch.setenv(CREDENTIALS_ENV, str(credentials))
        # the password stored on the entity (as the controller pushes it, decrypted)
        configuration = _sender(
            mailbox.port, isSslEnabled=True, username="plant", password="s3cret"
        )
        assert smtp_security(configuration)[0] == "StartTls"
        result = _send(configuration)
        assert result.status == "Completed", result.error
        assert mailbox.logins == ["plant"]
        assert mailbox.messages[0]["Subject"] == "Meter m7: 12.3 kWh"
        wrong = _send({**configuration, "password": "nope"})
        assert wrong.status == "Failed"
        assert "pipeline 'mail', transformations[0] (SendEMail@1): property 'emailSender': " in (
            wrong.error or ""
        )
        assert f"the SMTP server 127.0.0.1:{mailbox.port} refused the login of 'plant'" in (
            wrong.error or ""
        )
        # without TLS the server does not accept a login at all
        plain = _send({**configuration, "isSslEnabled": False})
        assert plain.status == "Failed"
        assert f"SMTP server 127.0.0.1:{mailbox.port}" in (plain.error or "")
        assert len(mailbox.messages) == 1


def test_tls_from_the_first_byte(
    certificates: tuple[Path, Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ca, cert, key = certificates
    with Mailbox(tls="ssl", cert=cert, key=key) as mailbox:
        configuration = _sender(mailbox.port, isSslEnabled=True, securityMode="SslOnConnect")
        untrusted = _send(configuration)  # the test CA is not trusted yet
        assert untrusted.status == "Failed"
        assert "CERTIFICATE_VERIFY_FAILED" in (untrusted.error or "")
        credentials = tmp_path / "credentials.json"
        credentials.write_text(json.dumps({"plantMail": {"caFile": str(ca)}}))
        monkeypatch.setenv(CREDENTIALS_ENV, str(credentials))
        result = _send(configuration)
        assert result.status == "Completed", result.error
        assert len(mailbox.messages) == 1


def test_errors_name_the_server_the_template_and_the_recipients(plain: Mailbox) -> None:
    closed = _send(_sender(9))
    assert closed.status == "Failed"
    assert "sending through the SMTP server 127.0.0.1:9 failed: ConnectionRefusedError" in (
        closed.error or ""
    )
    missing = _send(_sender(plain.port), definition=SEND.replace("{meter}:", "{site}:"))
    assert "property 'subject': {site} has no argument" in (missing.error or "")
    nobody = SEND.replace('to: ["{owner}", "Shift Lead <lead@plant.example>"]', "to: []")
    nobody = nobody.replace("    toPath: $.watchers\n", "").replace(
        "    bcc: audit@plant.example\n", ""
    )
    assert "no recipient" in (_send(_sender(plain.port), definition=nobody).error or "")
    unknown = _send({**_sender(plain.port), "rtWellKnownName": "other", "name": "other"})
    assert "no System.Communication/EMailSender configuration 'plantMail'" in (unknown.error or "")
    assert plain.messages == []


def test_security_mode_from_the_entity() -> None:
    assert smtp_security({"port": 25}) == ("None", 25)
    assert smtp_security({"isSslEnabled": True}) == ("SslOnConnect", 465)
    assert smtp_security({"isSslEnabled": True, "port": 587}) == ("StartTls", 587)
    assert smtp_security({"securityMode": "START_TLS"}) == ("StartTls", 587)
    with pytest.raises(ValueError, match="securityMode 'Tls13' is not one of"):
        smtp_security({"securityMode": "Tls13"})


def test_an_adapter_sends_through_the_configuration_its_pipeline_uses(plain: Mailbox) -> None:
    from workbench.communication.adapter import AdapterRuntime
    from workbench.messaging.local import LocalMessageBus

    pipeline = "65f00000000000000000e012"

    async def scenario() -> Any:
        runtime = AdapterRuntime(
            controller_url="http://127.0.0.1:9",
            tenant_id="t1",
            adapter_rt_id="65f00000000000000000e011",
            tenant=None,
            bus=LocalMessageBus(),
        )
        pushed = {
            "version": 1,
            "pipelines": [
                {
                    "rtId": pipeline,
                    "name": "mail",
                    "definition": SEND,
                    "configurations": [_sender(plain.port)],  # the entities it Uses
                }
            ],
        }
        try:
            assert await runtime.configure(pushed) == []
            return await runtime.execute(pipeline, DATA, "Manual")
        finally:
            await runtime.undeploy_all()

    result = asyncio.run(scenario())
    assert result.status == "Completed", result.error
    assert [m["Subject"] for m in plain.messages] == ["Meter m7: 12.3 kWh"]
