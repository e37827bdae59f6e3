"""What the Identity service's routes share: :class:`IdentityService` (directory, provider,
throttle, templates), the session cookie and CSRF tokens, and helpers that turn Starlette
requests into the provider's :class:`~workbench.identity.provider.HttpRequest` and back.

The routes are in :mod:`.pages` (login, authorize, consent, device and upstream pages),
:mod:`.oauth` (the protocol endpoints) and :mod:`.management` (management API);
:mod:`.app` assembles the application.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from itsdangerous import BadSignature, URLSafeTimedSerializer
from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.requests import HTTPConnection, Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from workbench.client.local import Workbench
from workbench.errors import Forbidden, Unauthenticated
from workbench.identity.directory import Directory
from workbench.identity.model import User
from workbench.identity.provider import HttpRequest, OAuthResponse, Provider
from workbench.identity.throttle import LoginThrottle
from workbench.services.auth import JwtAuthenticator, Principal, bearer_token
from workbench.services.metrics import ServiceMetrics
from workbench.settings import Settings
from workbench.tenancy.ids import SYSTEM_TENANT

__all__ = [
    "CSRF_COOKIE",
    "SESSION_COOKIE",
    "SESSION_MAX_AGE",
    "UPSTREAM_COOKIE",
    "IdentityService",
    "Session",
    "cut",
    "first_value",
    "http_request",
    "safe_next",
    "service_of",
    "tenant_from_acr",
    "to_response",
]

SESSION_COOKIE = "wb_session"
CSRF_COOKIE = "wb_csrf"
UPSTREAM_COOKIE = "wb_upstream"
SESSION_MAX_AGE = 12 * 3600
#: error messages quote at most this many characters of an input
_MAX_ECHO = 200
_TEMPLATES = Path(__file__).parent / "templates"
_SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; "
    "frame-ancestors 'none'; base-uri 'none'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


@dataclass
class Session:
    user_id: str
    tenant_id: str
    auth_time: int
    sid: str


@dataclass
class IdentityService:
    """What the routes share."""

    workbench: Workbench
    settings: Settings
    directory: Directory
    provider: Provider
    metrics: ServiceMetrics
    throttle: LoginThrottle
    owns_workbench: bool = False
    authenticator: JwtAuthenticator = field(init=False)
    serializer: URLSafeTimedSerializer = field(init=False)
    templates: Environment = field(init=False)

    def __post_init__(self) -> None:
        # revocation is checked by caller() against the store itself (no polling delay)
        self.authenticator = JwtAuthenticator(self.provider.verifier)
        self.serializer = URLSafeTimedSerializer(self.directory.secret("session"))
        self.templates = Environment(
            loader=FileSystemLoader(str(_TEMPLATES)),
            autoescape=select_autoescape(["html"]),
        )

    @property
    def issuer(self) -> str:
        return self.provider.config.issuer

    @property
    def secure_cookies(self) -> bool:
        return self.issuer.startswith("https://")

    # ------------------------------------------------------------ pages

    def page(self, template: str, status: int = 200, **context: Any) -> HTMLResponse:
        html = self.templates.get_template(template).render(**context)
        return HTMLResponse(html, status, headers=_SECURITY_HEADERS)

    def message(self, title: str, message: str, status: int = 400) -> HTMLResponse:
        return self.page("message.html", status, title=title, message=message, error=status >= 400)

    # ------------------------------------------------------------ session and CSRF

    def session(self, connection: HTTPConnection) -> Session | None:
        raw = connection.cookies.get(SESSION_COOKIE)
        if not raw:
            return None
        try:
            data = self.serializer.loads(raw, salt="session", max_age=SESSION_MAX_AGE)
        except BadSignature:
            return None
        if self.provider.tokens.session_ended(str(data["sid"])):
            return None  # signed out: the cookie no longer authorises anything
        return Session(data["uid"], data["t"], int(data["at"]), data["sid"])

    def end_session(self, connection: HTTPConnection) -> None:
        """End the server-side session of ``connection``'s cookie (logout)."""
        session = self.session(connection)
        if session is not None:
            self.provider.tokens.end_session(session.sid, session.auth_time + SESSION_MAX_AGE)

    def set_session(self, response: Response, user: User, tenant_id: str) -> None:
        value = self.serializer.dumps(
            {"uid": user.id, "t": tenant_id, "at": int(time.time()), "sid": secrets.token_hex(16)},
            salt="session",
        )
        response.set_cookie(
            SESSION_COOKIE,
            value,
            max_age=SESSION_MAX_AGE,
            httponly=True,
            samesite="lax",
            secure=self.secure_cookies,
            path="/",
        )

    def login_csrf(self, connection: HTTPConnection) -> tuple[str, str]:
        """(cookie value, form token) for the login form: the token is the signed cookie."""
        cookie = connection.cookies.get(CSRF_COOKIE) or secrets.token_urlsafe(24)
        return cookie, self.serializer.dumps(cookie, salt="login-csrf")

    def check_login_csrf(self, connection: HTTPConnection, token: str | None) -> bool:
        cookie = connection.cookies.get(CSRF_COOKIE)
        if not cookie or not token:
            return False
        try:
            value = self.serializer.loads(token, salt="login-csrf", max_age=3600)
        except BadSignature:
            return False
        return secrets.compare_digest(str(value), cookie)

    def session_csrf(self, session: Session, purpose: str) -> str:
        return self.serializer.dumps(session.sid, salt=f"csrf-{purpose}")

    def check_session_csrf(self, session: Session, purpose: str, token: str | None) -> bool:
        if not token:
            return False
        try:
            value = self.serializer.loads(token, salt=f"csrf-{purpose}", max_age=3600)
        except BadSignature:
            return False
        return secrets.compare_digest(str(value), session.sid)

    def set_csrf_cookie(self, response: Response, value: str) -> None:
        response.set_cookie(
            CSRF_COOKIE,
            value,
            max_age=3600,
            httponly=True,
            samesite="strict",
            secure=self.secure_cookies,
            path="/",
        )

    # ------------------------------------------------------------ management auth

    def caller(self, connection: HTTPConnection, role: str, tenant_id: str) -> Principal:
        """The management API's caller: a token of this issuer with ``role``, whose
        ``allowed_tenants`` holds ``tenant_id`` (system-tenant tokens manage every tenant)."""
        principal = self.authenticator.authenticate(connection)
        if role not in principal.roles:
            raise Forbidden(f"{principal.subject} lacks the {role} role this request needs")
        if not self.platform_caller(connection):
            principal.check_tenant(tenant_id)
        return principal

    def platform_caller(self, connection: HTTPConnection) -> bool:
        """Whether the caller's token (verified, not revoked) is of the system tenant: a
        platform administrator's."""
        token = bearer_token(connection)
        if token is None:
            return False
        claims = self.provider.verifier.verify(token)
        if self.provider.tokens.revoked(claims):
            raise Unauthenticated("the token has been revoked; sign in again")
        return claims.get("tenant_id") == SYSTEM_TENANT

    def close(self) -> None:
        if self.owns_workbench:
            self.workbench.close()


def service_of(connection: HTTPConnection) -> IdentityService:
    service: IdentityService = connection.app.state.service
    return service


async def http_request(request: Request) -> HttpRequest:
    form: dict[str, list[str]] = {}
    if request.method == "POST":
        body = await request.body()
        content_type = request.headers.get("content-type", "")
        if content_type.startswith("application/x-www-form-urlencoded") and body:
            form = parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)
    query = parse_qs(request.url.query, keep_blank_values=True)
    return HttpRequest(request.method, str(request.url), dict(request.headers), query, form)


def to_response(result: OAuthResponse) -> Response:
    headers = {k: v for k, v in result.headers if k.lower() != "content-type"}
    if result.status in (301, 302, 303, 307) and result.location:
        return RedirectResponse(result.location, 302, headers=headers)
    if isinstance(result.body, dict | list):
        return JSONResponse(result.body, result.status, headers=headers)
    return Response(str(result.body or ""), result.status, headers=headers)


def safe_next(value: str | None) -> str:
    """A local path to continue to after login (never another site)."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return "/"
    return value


def cut(value: str, limit: int = _MAX_ECHO) -> str:
    """``value`` shortened for an error message (never echo huge inputs back)."""
    return value if len(value) <= limit else value[:limit] + f"... ({len(value)} characters)"


def tenant_from_acr(acr_values: str | None) -> str | None:
    for value in (acr_values or "").split():
        if value.startswith("tenant:"):
            return value[len("tenant:") :]
    return None


def first_value(values: Mapping[str, list[str]], key: str) -> str | None:
    found = values.get(key)
    return found[0] if found else None
