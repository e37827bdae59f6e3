"""The Identity service's browser pages: login (password, LDAP, upstream OpenID Connect),
``/authorize`` with the consent page, and the device verification page.

Server-rendered, no external assets, CSRF-protected; failed logins are throttled per account
and per address (:class:`~workbench.identity.throttle.LoginThrottle`). A tenant's client only
gets tokens for that tenant and its children; clients that are not first-party always show the
consent page (until the user allowed the scopes).
"""

from __future__ import annotations

import logging
import secrets
from typing import Any
from urllib.parse import parse_qs, urlencode

from fastapi import APIRouter
from itsdangerous import BadSignature
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from workbench.errors import BackendUnavailable, Forbidden, Unauthenticated, WorkbenchError
from workbench.identity.ldap import LdapSettings, ldap_login
from workbench.identity.model import User
from workbench.identity.provider import HttpRequest, OAuthResponse, Provider
from workbench.identity.upstream import OidcSettings, OidcUpstream, PendingLogin
from workbench.services.context import current_request_id
from workbench.services.identity.service import (
    UPSTREAM_COOKIE,
    IdentityService,
    cut,
    first_value,
    http_request,
    safe_next,
    service_of,
    tenant_from_acr,
    to_response,
)

__all__ = ["router"]

log = logging.getLogger("workbench.services.identity.app")

router = APIRouter()


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
    service = service_of(request)
    next_url = safe_next(request.query_params.get("next"))
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


def _too_many(
    service: IdentityService,
    request: Request,
    next_url: str,
    tenant: str,
    username: str,
    wait: float,
) -> Response:
    seconds = int(wait) + 1
    response = _login_page(
        service,
        request,
        next_url=next_url,
        tenant=tenant,
        username=username,
        error=f"Too many failed logins. Try again in {seconds} seconds.",
        status=429,
    )
    response.headers["Retry-After"] = str(seconds)
    return response


@router.post("/login", tags=["login"], summary="Submit the login form", include_in_schema=False)
async def login_submit(request: Request) -> Response:
    service = service_of(request)
    form = (await http_request(request)).form
    next_url = safe_next(first_value(form, "next"))
    tenant = (first_value(form, "tenant") or "").strip()
    username = (first_value(form, "username") or "").strip()
    password = first_value(form, "password") or ""

    def form_again(error: str, status: int) -> HTMLResponse:
        return _login_page(
            service,
            request,
            next_url=next_url,
            tenant=tenant,
            username=username,
            error=error,
            status=status,
        )

    if not service.check_login_csrf(request, first_value(form, "csrf_token")):
        return form_again(
            "The login form expired or was not sent from this site. Please try again.", 400
        )
    client_ip = request.client.host if request.client else "unknown"
    account, address = f"{tenant}/{username.lower()}", client_ip
    # a locked account is refused whatever the password; a throttled address only answers
    # its wrong guesses with 429 (a correct password of an unlocked account still gets in)
    wait = service.throttle.account_wait(account)
    if wait > 0:
        return _too_many(service, request, next_url, tenant, username, wait)
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
        service.throttle.failed(account, address)
        if service.directory.audit is not None and service.directory.registry.exists(tenant):
            service.directory.audit.record(
                tenant,
                actor=f"anonymous@{client_ip}",
                action="login.failed",
                target=username,
                request_id=current_request_id(),
            )
        wait = service.throttle.address_wait(address)
        if wait > 0:
            return _too_many(service, request, next_url, tenant, username, wait)
        return form_again(error, 401)
    service.throttle.succeeded(account)
    if service.directory.audit is not None:
        # the user's last activity, which the user-management bot disables inactive users by
        service.directory.audit.record(
            user.tenant_id,
            actor=user.id,
            action="login.succeeded",
            target=user.username,
            request_id=current_request_id(),
        )
    redirect = RedirectResponse(next_url, 303)
    service.set_session(redirect, user, tenant)
    return redirect


# ---------------------------------------------------------------- authorize and consent


def _bad_redirect_uri(http: HttpRequest) -> str | None:
    """Why the request's ``redirect_uri`` cannot even be compared (None: it can)."""
    values = [*http.query.get("redirect_uri", []), *http.form.get("redirect_uri", [])]
    for value in values:
        if "\\" in value or any(ord(c) < 0x20 or ord(c) == 0x7F for c in value):
            return (
                f"redirect_uri {cut(value)!r} contains a backslash or a control character; "
                "send exactly one of the client's registered redirect URIs"
            )
    return None


def _login_redirect(request: Request, tenant: str | None) -> Response:
    next_url = request.url.path + ("?" + request.url.query if request.url.query else "")
    query = {"next": next_url}
    if tenant:
        query["tenant"] = tenant
    return RedirectResponse("/login?" + urlencode(query), 302)


async def _authorize(request: Request, http: HttpRequest) -> Response:
    from authlib.oauth2 import OAuth2Error

    service = service_of(request)
    provider = service.provider
    problem = _bad_redirect_uri(http)
    if problem is not None:
        return service.message("Sign-in request refused", f"invalid_request: {problem}")
    try:
        grant = provider.server.get_consent_grant(http, end_user=None)
    except OAuth2Error as error:
        if error.redirect_uri:
            return to_response(provider.server.handle_error_response(None, error))
        # unknown client or unregistered redirect URI: never redirect, show the problem
        return service.message(
            "Sign-in request refused",
            f"{error.error}: {cut(error.description or 'the request is invalid')}",
        )
    params = {k: v[0] for k, v in {**http.query, **http.form}.items() if v}
    client = grant.client.client
    requested = tenant_from_acr(params.get("acr_values"))
    tenant = requested or client.tenant_id
    session = service.session(request)
    user = service.directory.user_by_id(session.user_id) if session else None
    prompt = params.get("prompt", "")
    if session is None or user is None or not user.enabled or "login" in prompt.split():
        if "none" in prompt.split():
            return to_response(_redirect_error(provider, http, grant, "login_required"))
        if "login" in prompt.split() and session is not None:
            # ask once: drop prompt=login from the request we come back to
            query = urlencode([(k, v) for k, v in params.items() if k != "prompt"])
            return RedirectResponse(
                "/login?" + urlencode({"next": f"/authorize?{query}", "tenant": tenant}), 302
            )
        return _login_redirect(request, tenant)
    # without acr_values the token is for the tenant the user signed in to (not the client's)
    tenant = requested or user.tenant_id
    if not provider.client_serves(client, tenant):
        return to_response(_redirect_error(provider, http, grant, "access_denied"))
    try:
        subject = provider.subject_for(
            user, tenant, nonce=params.get("nonce"), auth_time=session.auth_time
        )
    except Forbidden:
        return to_response(_redirect_error(provider, http, grant, "access_denied"))
    scopes = (grant.request.scope or "").split()
    if not client.first_party and not set(scopes) <= set(user.consents.get(client.client_id, [])):
        if "none" in prompt.split():
            return to_response(_redirect_error(provider, http, grant, "consent_required"))
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
    return to_response(
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
    return await _authorize(request, await http_request(request))


@router.post("/authorize/consent", include_in_schema=False)
async def consent(request: Request) -> Response:
    service = service_of(request)
    form = (await http_request(request)).form
    session = service.session(request)
    if session is None:
        return service.message("Session expired", "Sign in again and repeat the request.", 401)
    if not service.check_session_csrf(session, "consent", first_value(form, "csrf_token")):
        return service.message(
            "Request refused", "The consent form expired or was not sent from this site.", 400
        )
    original = first_value(form, "request") or ""
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
        return service.message(
            "Sign-in request refused", cut(str(error.description or error.error))
        )
    if first_value(form, "decision") != "allow":
        return to_response(
            service.provider.server.create_authorization_response(
                http, grant_user=None, grant=grant
            )
        )
    service.directory.remember_consent(
        user, grant.client.client_id, (grant.request.scope or "").split()
    )
    return await _authorize(request, http)


# ---------------------------------------------------------------- device verification page


@router.get(
    "/device", tags=["login"], summary="Enter a device's user code", response_class=HTMLResponse
)
async def device_page(request: Request) -> Response:
    service = service_of(request)
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
    service = service_of(request)
    form = (await http_request(request)).form
    session = service.session(request)
    user = service.directory.user_by_id(session.user_id) if session else None
    if session is None or user is None:
        return service.message("Session expired", "Sign in again and enter the code.", 401)
    if not service.check_session_csrf(session, "device", first_value(form, "csrf_token")):
        return service.message("Request refused", "The form expired; reload the page.", 400)
    user_code = (first_value(form, "user_code") or "").strip().upper()
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
    allow = first_value(form, "decision") == "allow"
    client = service.directory.get_client(grant.client_id)
    if client is None or not service.provider.client_serves(client, session.tenant_id):
        allow = False  # a tenant's client gets tokens for that tenant (and its children) only
    grant.subject = service.provider.subject_for(
        user, session.tenant_id, auth_time=session.auth_time
    )
    grant.state = "approved" if allow else "denied"
    service.provider.tokens.save_device(grant)
    done = "The device is connected; you can close this page." if allow else "Access denied."
    return service.page("device.html", done=done, **context)


# ---------------------------------------------------------------- upstream OIDC login


@router.get("/login/upstream/{name}", tags=["login"], summary="Sign in with an external provider")
async def upstream_start(request: Request, name: str) -> Response:
    service = service_of(request)
    tenant = request.query_params.get("tenant", "")
    next_url = safe_next(request.query_params.get("next"))
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
    service = service_of(request)
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
