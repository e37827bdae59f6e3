"""The Identity service (port 5003): OAuth 2.0 / OpenID Connect provider and management API.

Protocol endpoints (discovery, JWKS, authorize, token, userinfo, revocation, introspection,
device authorization, end-session) delegate to :class:`workbench.identity.provider.Provider`;
this module adds what a browser needs: the login, consent and device pages (server-rendered,
no external assets, CSRF-protected, failed logins throttled), the session cookie, upstream
logins (LDAP, external OIDC), and the management REST API under ``/api`` (UserManagement /
TenantManagement roles).
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode

import click
from fastapi import APIRouter, FastAPI
from itsdangerous import BadSignature, URLSafeTimedSerializer
from jinja2 import Environment, FileSystemLoader, select_autoescape
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool
from starlette.requests import HTTPConnection, Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from workbench.client.local import Workbench, open_workbench
from workbench.errors import (
    BackendUnavailable,
    Forbidden,
    Unauthenticated,
    WorkbenchError,
)
from workbench.identity.directory import Directory
from workbench.identity.ldap import LdapSettings, ldap_login
from workbench.identity.model import ROLES, User
from workbench.identity.provider import HttpRequest, OAuthResponse, Provider, ProviderConfig
from workbench.identity.throttle import LoginThrottle
from workbench.identity.tokens import Subject, userinfo_claims
from workbench.identity.upstream import OidcSettings, OidcUpstream, PendingLogin
from workbench.identity.verification import JwtAuthenticator
from workbench.services.app import run_service, service_app
from workbench.services.auth import Principal, bearer_token
from workbench.services.context import current_request_id
from workbench.services.metrics import ServiceMetrics
from workbench.settings import Settings
from workbench.tenancy.ids import SYSTEM_TENANT

__all__ = ["SERVICE_NAME", "IdentityService", "create_app", "serve"]

log = logging.getLogger("workbench.services.identity")

SERVICE_NAME = "identity"
SESSION_COOKIE = "wb_session"
CSRF_COOKIE = "wb_csrf"
UPSTREAM_COOKIE = "wb_upstream"
SESSION_MAX_AGE = 12 * 3600
_TEMPLATES = Path(__file__).parent / "templates" / "identity"
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
        self.authenticator = JwtAuthenticator(self.provider.verifier, enforce_operations=False)
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
        return Session(data["uid"], data["t"], int(data["at"]), data["sid"])

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
        token = bearer_token(connection)
        assert token is not None
        claims = self.provider.verifier.verify(token)
        if self.provider.tokens.jti_revoked(str(claims.get("jti", ""))):
            raise Unauthenticated("the token has been revoked")
        if role not in principal.roles:
            raise Forbidden(f"{principal.subject} lacks the {role} role this request needs")
        platform = claims.get("tenant_id") == SYSTEM_TENANT
        if not platform:
            principal.check_tenant(tenant_id)
        return principal

    def close(self) -> None:
        if self.owns_workbench:
            self.workbench.close()


def _service(connection: HTTPConnection) -> IdentityService:
    service: IdentityService = connection.app.state.service
    return service


async def _http_request(request: Request) -> HttpRequest:
    form: dict[str, list[str]] = {}
    if request.method == "POST":
        body = await request.body()
        content_type = request.headers.get("content-type", "")
        if content_type.startswith("application/x-www-form-urlencoded") and body:
            form = parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)
    query = parse_qs(request.url.query, keep_blank_values=True)
    return HttpRequest(request.method, str(request.url), dict(request.headers), query, form)


def _to_response(result: OAuthResponse) -> Response:
    headers = {k: v for k, v in result.headers if k.lower() != "content-type"}
    if result.status in (301, 302, 303, 307) and result.location:
        return RedirectResponse(result.location, 302, headers=headers)
    if isinstance(result.body, dict | list):
        return JSONResponse(result.body, result.status, headers=headers)
    return Response(str(result.body or ""), result.status, headers=headers)


def _safe_next(value: str | None) -> str:
    """A local path to continue to after login (never another site)."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return "/"
    return value


def _tenant_from_acr(acr_values: str | None) -> str | None:
    for value in (acr_values or "").split():
        if value.startswith("tenant:"):
            return value[len("tenant:") :]
    return None


def _first(values: Mapping[str, list[str]], key: str) -> str | None:
    found = values.get(key)
    return found[0] if found else None


router = APIRouter()


# ---------------------------------------------------------------- discovery and keys


@router.get("/.well-known/openid-configuration", tags=["oidc"], summary="OIDC discovery")
async def discovery(request: Request) -> JSONResponse:
    return JSONResponse(_service(request).provider.discovery())


@router.get("/jwks", tags=["oidc"], summary="Published signing keys (current and previous)")
async def jwks(request: Request) -> JSONResponse:
    return JSONResponse(
        _service(request).provider.keys.jwks(), headers={"Cache-Control": "max-age=300"}
    )


# ---------------------------------------------------------------- login


def _login_page(
    service: IdentityService,
    request: Request,
    *,
    next_url: str,
    tenant: str,
    username: str = "",
    error: str | None = None,
    status: int = 200,
) -> HTMLResponse:
    cookie, token = service.login_csrf(request)
    upstreams = []
    if tenant:
        try:
            for doc in service.directory.list_upstreams(tenant):
                if doc.get("kind") == "oidc":
                    query = urlencode({"tenant": tenant, "next": next_url})
                    upstreams.append(
                        {
                            "href": f"/login/upstream/{doc['name']}?{query}",
                            "label": doc.get("label") or doc["name"],
                        }
                    )
        except WorkbenchError:
            upstreams = []
    response = service.page(
        "login.html",
        status,
        action="/login",
        csrf_token=token,
        next=next_url,
        tenant=tenant,
        username=username,
        error=error,
        upstreams=upstreams,
    )
    service.set_csrf_cookie(response, cookie)
    return response


@router.get("/login", tags=["login"], summary="Login page", response_class=HTMLResponse)
async def login_page(request: Request) -> Response:
    service = _service(request)
    next_url = _safe_next(request.query_params.get("next"))
    tenant = request.query_params.get("tenant") or ""
    return _login_page(service, request, next_url=next_url, tenant=tenant)


def _password_login(
    service: IdentityService, tenant: str, username: str, password: str
) -> User | None:
    """A local user, else a user of one of the tenant's LDAP providers (provisioned)."""
    user = service.directory.authenticate_password(tenant, username, password)
    if user is not None:
        return user
    local = service.directory.find_user(tenant, username)
    if local is not None and local.source == "local":
        return None  # a local account never falls through to LDAP
    for doc in service.directory.list_upstreams(tenant):
        if doc.get("kind") != "ldap":
            continue
        identity = ldap_login(LdapSettings.from_document(doc), username, password)
        if identity is not None:
            provisioned = service.directory.provision(tenant, identity)
            return provisioned if provisioned.enabled else None
    return None


@router.post("/login", tags=["login"], summary="Submit the login form", include_in_schema=False)
async def login_submit(request: Request) -> Response:
    service = _service(request)
    form = (await _http_request(request)).form
    next_url = _safe_next(_first(form, "next"))
    tenant = (_first(form, "tenant") or "").strip()
    username = (_first(form, "username") or "").strip()
    password = _first(form, "password") or ""
    if not service.check_login_csrf(request, _first(form, "csrf_token")):
        return _login_page(
            service,
            request,
            next_url=next_url,
            tenant=tenant,
            username=username,
            error="The login form expired or was not sent from this site. Please try again.",
            status=400,
        )
    client_ip = request.client.host if request.client else "unknown"
    keys = (f"account:{tenant}/{username}", f"ip:{client_ip}")
    wait = service.throttle.retry_after(*keys)
    if wait > 0:
        response = _login_page(
            service,
            request,
            next_url=next_url,
            tenant=tenant,
            username=username,
            error=f"Too many failed logins. Try again in {int(wait) + 1} seconds.",
            status=429,
        )
        response.headers["Retry-After"] = str(int(wait) + 1)
        return response
    user: User | None = None
    error = "Unknown tenant, username or password."
    try:
        user = await run_in_threadpool(_password_login, service, tenant, username, password)
    except BackendUnavailable as exc:
        log.warning("login upstream unavailable: %s", exc)
        error = "The sign-in directory is not reachable right now. Try again later."
    except WorkbenchError:
        user = None
    if user is None:
        service.throttle.failed(*keys)
        if service.directory.audit is not None and service.directory.registry.exists(tenant):
            service.directory.audit.record(
                tenant,
                actor=f"anonymous@{client_ip}",
                action="login.failed",
                target=username,
                request_id=current_request_id(),
            )
        return _login_page(
            service,
            request,
            next_url=next_url,
            tenant=tenant,
            username=username,
            error=error,
            status=401,
        )
    service.throttle.succeeded(keys[0])
    redirect = RedirectResponse(next_url, 303)
    service.set_session(redirect, user, tenant)
    return redirect


# ---------------------------------------------------------------- authorize and consent


def _login_redirect(request: Request, tenant: str | None) -> Response:
    next_url = request.url.path + ("?" + request.url.query if request.url.query else "")
    query = {"next": next_url}
    if tenant:
        query["tenant"] = tenant
    return RedirectResponse("/login?" + urlencode(query), 302)


async def _authorize(request: Request, http: HttpRequest) -> Response:
    from authlib.oauth2 import OAuth2Error

    service = _service(request)
    provider = service.provider
    try:
        grant = provider.server.get_consent_grant(http, end_user=None)
    except OAuth2Error as error:
        if error.redirect_uri:
            return _to_response(provider.server.handle_error_response(None, error))
        # unknown client or unregistered redirect URI: never redirect, show the problem
        return service.message(
            "Sign-in request refused",
            f"{error.error}: {error.description or 'the request is invalid'}",
        )
    params = {k: v[0] for k, v in {**http.query, **http.form}.items() if v}
    client = grant.client.client
    requested = _tenant_from_acr(params.get("acr_values"))
    tenant = requested or client.tenant_id
    session = service.session(request)
    user = service.directory.user_by_id(session.user_id) if session else None
    prompt = params.get("prompt", "")
    if session is None or user is None or not user.enabled or "login" in prompt.split():
        if "none" in prompt.split():
            return _to_response(_redirect_error(provider, http, grant, "login_required"))
        if "login" in prompt.split() and session is not None:
            # ask once: drop prompt=login from the request we come back to
            query = urlencode([(k, v) for k, v in params.items() if k != "prompt"])
            return RedirectResponse(
                "/login?" + urlencode({"next": f"/authorize?{query}", "tenant": tenant}), 302
            )
        return _login_redirect(request, tenant)
    # without acr_values the token is for the tenant the user signed in to (not the client's)
    tenant = requested or user.tenant_id
    try:
        subject = provider.subject_for(
            user, tenant, nonce=params.get("nonce"), auth_time=session.auth_time
        )
    except Forbidden:
        return _to_response(_redirect_error(provider, http, grant, "access_denied"))
    scopes = (grant.request.scope or "").split()
    if not client.first_party and not set(scopes) <= set(user.consents.get(client.client_id, [])):
        if "none" in prompt.split():
            return _to_response(_redirect_error(provider, http, grant, "consent_required"))
        return service.page(
            "consent.html",
            action="/authorize/consent",
            csrf_token=service.session_csrf(session, "consent"),
            request_query=urlencode(params),
            client_name=client.name,
            username=user.username,
            tenant=tenant,
            scopes=scopes,
        )
    return _to_response(
        provider.server.create_authorization_response(http, grant_user=subject, grant=grant)
    )


def _redirect_error(provider: Provider, http: HttpRequest, grant: Any, error: str) -> OAuthResponse:
    from authlib.oauth2.rfc6749.errors import AccessDeniedError, OAuth2Error

    exc: OAuth2Error = AccessDeniedError() if error == "access_denied" else OAuth2Error()
    exc.error = error
    exc.redirect_uri = grant.redirect_uri
    exc.state = http.query.get("state", [None])[0]
    result: OAuthResponse = provider.server.handle_error_response(None, exc)
    return result


@router.get("/authorize", tags=["oidc"], summary="Authorization endpoint (code + PKCE)")
async def authorize(request: Request) -> Response:
    return await _authorize(request, await _http_request(request))


@router.post("/authorize/consent", include_in_schema=False)
async def consent(request: Request) -> Response:
    service = _service(request)
    form = (await _http_request(request)).form
    session = service.session(request)
    if session is None:
        return service.message("Session expired", "Sign in again and repeat the request.", 401)
    if not service.check_session_csrf(session, "consent", _first(form, "csrf_token")):
        return service.message(
            "Request refused", "The consent form expired or was not sent from this site.", 400
        )
    original = _first(form, "request") or ""
    query = parse_qs(original, keep_blank_values=True)
    url = f"{service.issuer}/authorize?{original}"
    http = HttpRequest("GET", url, dict(request.headers), query, {})
    user = service.directory.user_by_id(session.user_id)
    if user is None:
        return service.message("Session expired", "Sign in again and repeat the request.", 401)
    from authlib.oauth2 import OAuth2Error

    try:
        grant = service.provider.server.get_consent_grant(http, end_user=None)
    except OAuth2Error as error:
        return service.message("Sign-in request refused", str(error.description or error.error))
    if _first(form, "decision") != "allow":
        return _to_response(
            service.provider.server.create_authorization_response(
                http, grant_user=None, grant=grant
            )
        )
    service.directory.remember_consent(
        user, grant.client.client_id, (grant.request.scope or "").split()
    )
    return await _authorize(request, http)


# ---------------------------------------------------------------- token endpoints


@router.post("/token", tags=["oidc"], summary="Token endpoint (all grants)")
async def token(request: Request) -> Response:
    http = await _http_request(request)
    provider = _service(request).provider
    return _to_response(await run_in_threadpool(provider.token_response, http))


@router.post("/revoke", tags=["oidc"], summary="Token revocation (RFC 7009)")
async def revoke(request: Request) -> Response:
    http = await _http_request(request)
    provider = _service(request).provider
    return _to_response(await run_in_threadpool(provider.endpoint_response, "revocation", http))


@router.post("/introspect", tags=["oidc"], summary="Token introspection (RFC 7662)")
async def introspect(request: Request) -> Response:
    http = await _http_request(request)
    provider = _service(request).provider
    return _to_response(await run_in_threadpool(provider.endpoint_response, "introspection", http))


@router.post("/device_authorization", tags=["oidc"], summary="Device authorization (RFC 8628)")
async def device_authorization(request: Request) -> Response:
    http = await _http_request(request)
    provider = _service(request).provider
    return _to_response(
        await run_in_threadpool(provider.endpoint_response, "device_authorization", http)
    )


@router.api_route("/userinfo", methods=["GET", "POST"], tags=["oidc"], summary="UserInfo")
async def userinfo(request: Request) -> JSONResponse:
    service = _service(request)
    token_value = bearer_token(request)
    if token_value is None:
        raise Unauthenticated("send the access token as 'Authorization: Bearer <token>'")
    claims = service.provider.verifier.verify(token_value)
    if service.provider.tokens.jti_revoked(str(claims.get("jti", ""))):
        raise Unauthenticated("the token has been revoked")
    subject = Subject(
        sub=str(claims["sub"]),
        tenant_id=str(claims.get("tenant_id")),
        allowed_tenants=list(claims.get("allowed_tenants") or []),
        roles=list(claims.get("roles") or []),
        username=claims.get("preferred_username"),
    )
    user = service.directory.user_by_id(subject.sub)
    if user is not None:
        subject.email, subject.name = user.email, user.name
    return JSONResponse(userinfo_claims(subject, str(claims.get("scope", ""))))


# ---------------------------------------------------------------- device verification page


@router.get(
    "/device", tags=["login"], summary="Enter a device's user code", response_class=HTMLResponse
)
async def device_page(request: Request) -> Response:
    service = _service(request)
    session = service.session(request)
    user = service.directory.user_by_id(session.user_id) if session else None
    if session is None or user is None:
        return _login_redirect(request, request.query_params.get("tenant"))
    return service.page(
        "device.html",
        action="/device",
        csrf_token=service.session_csrf(session, "device"),
        user_code=request.query_params.get("user_code", ""),
        username=user.username,
        tenant=session.tenant_id,
    )


@router.post("/device", include_in_schema=False)
async def device_submit(request: Request) -> Response:
    service = _service(request)
    form = (await _http_request(request)).form
    session = service.session(request)
    user = service.directory.user_by_id(session.user_id) if session else None
    if session is None or user is None:
        return service.message("Session expired", "Sign in again and enter the code.", 401)
    if not service.check_session_csrf(session, "device", _first(form, "csrf_token")):
        return service.message("Request refused", "The form expired; reload the page.", 400)
    user_code = (_first(form, "user_code") or "").strip().upper()
    grant = service.provider.tokens.device_by_user_code(user_code)
    context: dict[str, Any] = {
        "action": "/device",
        "csrf_token": service.session_csrf(session, "device"),
        "username": user.username,
        "tenant": session.tenant_id,
        "user_code": user_code,
    }
    if grant is None or grant.is_expired() or grant.state != "pending":
        return service.page("device.html", 400, error="That code is unknown or expired.", **context)
    allow = _first(form, "decision") == "allow"
    grant.subject = service.provider.subject_for(
        user, session.tenant_id, auth_time=session.auth_time
    )
    grant.state = "approved" if allow else "denied"
    service.provider.tokens.save_device(grant)
    done = "The device is connected; you can close this page." if allow else "Access denied."
    return service.page("device.html", done=done, **context)


# ---------------------------------------------------------------- end session


@router.get("/end-session", tags=["oidc"], summary="RP-initiated logout")
async def end_session(request: Request) -> Response:
    service = _service(request)
    params = request.query_params
    target = params.get("post_logout_redirect_uri")
    client_id = params.get("client_id")
    hint = params.get("id_token_hint")
    if hint and not client_id:
        try:
            claims = service.provider.verifier.verify(hint, audience=_unverified_aud(hint))
            client_id = str(claims.get("aud"))
        except (Unauthenticated, ValueError):
            client_id = None
    response: Response
    if target and client_id:
        client = service.directory.get_client(client_id)
        if client is not None and target in client.post_logout_redirect_uris:
            state = params.get("state")
            location = target + (
                ("&" if "?" in target else "?") + urlencode({"state": state}) if state else ""
            )
            response = RedirectResponse(location, 302)
        else:
            response = service.message(
                "Signed out", "You are signed out. (The return address is not registered.)", 200
            )
    else:
        response = service.message("Signed out", "You are signed out.", 200)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


def _unverified_aud(token_value: str) -> str:
    import base64
    import json

    payload = token_value.split(".")[1]
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    aud = claims.get("aud")
    return str(aud[0] if isinstance(aud, list) else aud)


# ---------------------------------------------------------------- upstream OIDC login


@router.get("/login/upstream/{name}", tags=["login"], summary="Sign in with an external provider")
async def upstream_start(request: Request, name: str) -> Response:
    service = _service(request)
    tenant = request.query_params.get("tenant", "")
    next_url = _safe_next(request.query_params.get("next"))
    try:
        doc = service.directory.get_upstream(tenant, name)
    except WorkbenchError:
        return service.message(
            "Unknown provider", f"No sign-in provider {name!r} for this tenant.", 404
        )
    if doc.get("kind") != "oidc":
        return service.message(
            "Unknown provider", f"{name!r} is not an OpenID Connect provider.", 404
        )
    upstream = OidcUpstream(OidcSettings.from_document(doc))
    redirect_uri = f"{service.issuer}/login/upstream-callback"
    url, pending = await run_in_threadpool(
        upstream.authorization_url, redirect_uri, tenant, next_url
    )
    response = RedirectResponse(url, 302)
    response.set_cookie(
        UPSTREAM_COOKIE,
        service.serializer.dumps(pending.__dict__, salt="upstream"),
        max_age=600,
        httponly=True,
        samesite="lax",
        secure=service.secure_cookies,
        path="/login/upstream-callback",
    )
    return response


@router.get("/login/upstream-callback", include_in_schema=False)
async def upstream_callback(request: Request) -> Response:
    service = _service(request)
    raw = request.cookies.get(UPSTREAM_COOKIE)
    try:
        pending = PendingLogin(**service.serializer.loads(raw or "", salt="upstream", max_age=600))
    except (BadSignature, TypeError):
        return service.message(
            "Sign-in failed", "The sign-in took too long or was not started here."
        )
    if not secrets.compare_digest(request.query_params.get("state", ""), pending.state):
        return service.message(
            "Sign-in failed", "The provider's answer does not match this sign-in."
        )
    code = request.query_params.get("code")
    if not code:
        reason = request.query_params.get("error", "no code")
        return service.message(
            "Sign-in failed", f"The provider refused the sign-in ({reason}).", 401
        )
    doc = service.directory.get_upstream(pending.tenant_id, pending.upstream)
    upstream = OidcUpstream(OidcSettings.from_document(doc))
    redirect_uri = f"{service.issuer}/login/upstream-callback"
    try:
        identity = await run_in_threadpool(upstream.finish, code, redirect_uri, pending)
        user = await run_in_threadpool(service.directory.provision, pending.tenant_id, identity)
    except (Unauthenticated, BackendUnavailable, WorkbenchError) as exc:
        return service.message("Sign-in failed", str(exc), 401)
    if not user.enabled:
        return service.message("Sign-in failed", "This account is disabled.", 403)
    response = RedirectResponse(pending.next, 303)
    service.set_session(response, user, pending.tenant_id)
    response.delete_cookie(UPSTREAM_COOKIE, path="/login/upstream-callback")
    return response


# ---------------------------------------------------------------- management API

api = APIRouter(prefix="/api/tenants/{tenantId}", tags=["management"])


class UserCreate(BaseModel):
    username: str
    password: str | None = Field(default=None, description="Omit for upstream-only users.")
    email: str | None = None
    name: str | None = None
    roles: list[str] = Field(default_factory=list)
    groups: list[str] = Field(default_factory=list)


class UserPatch(BaseModel):
    enabled: bool | None = None
    email: str | None = None
    name: str | None = None


class PasswordChange(BaseModel):
    password: str


class ClientCreate(BaseModel):
    clientId: str
    name: str | None = None
    public: bool = False
    redirectUris: list[str] = Field(default_factory=list)
    postLogoutRedirectUris: list[str] = Field(default_factory=list)
    grantTypes: list[str] | None = None
    scopes: list[str] | None = None
    roles: list[str] = Field(default_factory=list)
    firstParty: bool = False


def _actor(principal: Principal) -> str:
    return principal.subject


@api.get("/users", summary="Users of the tenant")
async def api_list_users(request: Request, tenantId: str) -> list[dict[str, Any]]:
    service = _service(request)
    service.caller(request, "UserManagement", tenantId)
    return [u.public() for u in service.directory.list_users(tenantId)]


@api.post("/users", status_code=201, summary="Create a user")
async def api_create_user(request: Request, tenantId: str, body: UserCreate) -> dict[str, Any]:
    service = _service(request)
    principal = service.caller(request, "UserManagement", tenantId)
    user = await run_in_threadpool(
        lambda: service.directory.create_user(
            tenantId,
            body.username,
            password=body.password,
            email=body.email,
            name=body.name,
            roles=body.roles,
            groups=body.groups,
            actor=_actor(principal),
            request_id=current_request_id(),
        )
    )
    return user.public()


@api.patch("/users/{username}", summary="Enable/disable a user, change email or name")
async def api_patch_user(
    request: Request, tenantId: str, username: str, body: UserPatch
) -> dict[str, Any]:
    service = _service(request)
    principal = service.caller(request, "UserManagement", tenantId)
    user = service.directory.update_user(
        tenantId,
        username,
        enabled=body.enabled,
        email=body.email,
        name=body.name,
        actor=_actor(principal),
        request_id=current_request_id(),
    )
    return user.public()


@api.post("/users/{username}/password", summary="Set a user's password")
async def api_password(
    request: Request, tenantId: str, username: str, body: PasswordChange
) -> dict[str, Any]:
    service = _service(request)
    principal = service.caller(request, "UserManagement", tenantId)
    user = await run_in_threadpool(
        lambda: service.directory.set_password(
            tenantId,
            username,
            body.password,
            actor=_actor(principal),
            request_id=current_request_id(),
        )
    )
    return user.public()


@api.put("/users/{username}/roles/{role}", summary="Grant a role")
async def api_grant(request: Request, tenantId: str, username: str, role: str) -> dict[str, Any]:
    service = _service(request)
    principal = service.caller(request, "UserManagement", tenantId)
    return service.directory.grant_role(
        tenantId, username, role, actor=_actor(principal), request_id=current_request_id()
    ).public()


@api.delete("/users/{username}/roles/{role}", summary="Revoke a role")
async def api_revoke(request: Request, tenantId: str, username: str, role: str) -> dict[str, Any]:
    service = _service(request)
    principal = service.caller(request, "UserManagement", tenantId)
    return service.directory.revoke_role(
        tenantId, username, role, actor=_actor(principal), request_id=current_request_id()
    ).public()


@api.get("/groups", summary="Groups of the tenant")
async def api_groups(request: Request, tenantId: str) -> list[dict[str, Any]]:
    service = _service(request)
    service.caller(request, "UserManagement", tenantId)
    return [g.to_document() for g in service.directory.list_groups(tenantId)]


@api.get("/clients", summary="OAuth clients of the tenant")
async def api_clients(request: Request, tenantId: str) -> list[dict[str, Any]]:
    service = _service(request)
    service.caller(request, "UserManagement", tenantId)
    return [c.info() for c in service.directory.list_clients(tenantId)]


@api.post("/clients", status_code=201, summary="Register a client (the secret is shown once)")
async def api_create_client(request: Request, tenantId: str, body: ClientCreate) -> dict[str, Any]:
    service = _service(request)
    principal = service.caller(request, "UserManagement", tenantId)
    client, secret = await run_in_threadpool(
        lambda: service.directory.create_client(
            tenantId,
            body.clientId,
            name=body.name,
            public=body.public,
            redirect_uris=body.redirectUris,
            post_logout_redirect_uris=body.postLogoutRedirectUris,
            grant_types=body.grantTypes,
            scopes=body.scopes,
            roles=body.roles,
            first_party=body.firstParty,
            actor=_actor(principal),
            request_id=current_request_id(),
        )
    )
    return client.info() | {"clientSecret": secret}


@api.get("/upstreams", summary="Upstream identity providers (secrets left out)")
async def api_upstreams(request: Request, tenantId: str) -> list[dict[str, Any]]:
    service = _service(request)
    service.caller(request, "TenantManagement", tenantId)
    return [
        {k: v for k, v in doc.items() if k not in ("bindPassword", "clientSecret")}
        for doc in service.directory.list_upstreams(tenantId)
    ]


@api.put("/upstreams/{name}", summary="Add or replace an upstream provider (LDAP or OIDC)")
async def api_put_upstream(
    request: Request, tenantId: str, name: str, body: dict[str, Any]
) -> dict[str, str]:
    service = _service(request)
    principal = service.caller(request, "TenantManagement", tenantId)
    doc = dict(body, name=name)
    if doc.get("kind") == "ldap":
        LdapSettings.from_document(doc)
    elif doc.get("kind") == "oidc":
        OidcSettings.from_document(doc)
    service.directory.put_upstream(tenantId, name, doc, actor=_actor(principal))
    return {"name": name}


@api.get("/audit", summary="The tenant's audit log, newest first")
async def api_audit(
    request: Request,
    tenantId: str,
    actor: str | None = None,
    action: str | None = None,
    limit: int = 100,
) -> list[dict[str, Any]]:
    service = _service(request)
    principal = service.authenticator.authenticate(request)
    if not principal.roles & {"UserManagement", "TenantManagement"}:
        raise Forbidden(f"{principal.subject} needs UserManagement or TenantManagement")
    service.caller(
        request, sorted(principal.roles & {"UserManagement", "TenantManagement"})[0], tenantId
    )
    audit = service.directory.audit
    if audit is None:
        return []
    entries = await run_in_threadpool(
        lambda: audit.query(tenantId, actor=actor, action=action, limit=max(1, min(limit, 1000)))
    )
    return [e.to_document() for e in entries]


@router.post("/api/keys/rotate", tags=["management"], summary="Rotate the signing key")
async def api_rotate_keys(request: Request) -> dict[str, str]:
    service = _service(request)
    principal = service.caller(request, "TenantManagement", SYSTEM_TENANT)
    kid = await run_in_threadpool(service.provider.keys.rotate)
    service.provider.verifier.refresh()
    if service.directory.audit is not None:
        service.directory.audit.record(
            SYSTEM_TENANT,
            actor=principal.subject,
            action="keys.rotate",
            target=kid,
            request_id=current_request_id(),
        )
    return {"kid": kid}


@router.get("/api/roles", tags=["management"], summary="The platform's roles")
async def api_roles() -> list[str]:
    return list(ROLES)


# ---------------------------------------------------------------- app


def build_service(
    settings: Settings, workbench: Workbench | None = None, *, announce: bool = True
) -> IdentityService:
    """Open the directory, bootstrap the admin (printing a generated password once) and make
    the provider."""
    owns = workbench is None
    opened = workbench if workbench is not None else open_workbench(settings.home)
    directory = Directory.for_workbench(opened)
    admin_password = settings.admin_password.get_secret_value() if settings.admin_password else None
    generated = directory.bootstrap(admin_password)
    if generated is not None and announce:
        click.echo(
            "\n  Identity bootstrap: created user 'admin' in tenant 'system' with password\n"
            f"      {generated}\n  It is shown only this once; change it with "
            "'workbench users passwd admin --tenant system'.\n",
            err=True,
        )
    for record in opened.registry.list():
        directory.ensure_builtin_groups(record.id)
    config = ProviderConfig(
        issuer=settings.issuer_url(),
        audience=settings.identity_audience,
        access_token_ttl=settings.identity_access_token_ttl,
        refresh_token_ttl=settings.identity_refresh_token_ttl,
        key_rotation_days=settings.identity_key_rotation_days,
    )
    provider = Provider(directory, config)
    return IdentityService(
        workbench=opened,
        settings=settings,
        directory=directory,
        provider=provider,
        metrics=ServiceMetrics(SERVICE_NAME),
        throttle=LoginThrottle(settings.identity_login_max_failures),
        owns_workbench=owns,
    )


def create_app(
    settings: Settings | None = None,
    *,
    workbench: Workbench | None = None,
    announce: bool = True,
) -> FastAPI:
    """The Identity application (``workbench`` defaults to opening ``settings.home``)."""
    settings = settings or Settings()
    service = build_service(settings, workbench, announce=announce)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        log.info("identity ready", extra={"issuer": service.issuer})
        try:
            yield
        finally:
            service.close()

    app = service_app(
        title="Mesh Workbench Identity",
        description="OAuth 2.0 / OpenID Connect provider: login, tokens, users, roles, clients.",
        service=service,
        metrics=service.metrics,
        lifespan=lifespan,
        routers=[router, api],
    )
    return app


def serve(
    *,
    host: str = "127.0.0.1",
    port: int = 5003,
    data_dir: Path | None = None,
    settings: Settings | None = None,
    log_level: str = "info",
    ssl_certfile: Path | None = None,
    ssl_keyfile: Path | None = None,
) -> None:
    """Run the Identity service under uvicorn until interrupted."""
    settings = settings or Settings()
    if data_dir is not None:
        settings = settings.model_copy(update={"home": data_dir})
    run_service(
        create_app(settings),
        host=host,
        port=port,
        log_level=log_level,
        ssl_certfile=ssl_certfile,
        ssl_keyfile=ssl_keyfile,
    )
