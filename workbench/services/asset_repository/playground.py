"""The GraphQL playground (GraphiQL) of a tenant, served entirely by this service.

The page loads React, ReactDOM and GraphiQL from ``/static/`` (vendored from npm, see
``static/README.md``) plus our ``playground-auth.js`` and ``playground.js``, which point
GraphiQL at the tenant's endpoint. A Content-Security-Policy limits the page to this origin, so
nothing is fetched from the internet even if a vendored file tried to.

How the page gets a token depends on the service's authenticator:

- **Identity JWTs** (the default): the page logs in through the Identity service with the
  authorization code flow and PKCE (S256) as the public first-party client
  ``workbench-playground``. Without a token it sends the browser to Identity's ``/authorize``
  (``acr_values=tenant:<tenant>``); Identity shows its login form and redirects to
  ``/playground/callback`` on this service, whose page exchanges the code for tokens through
  ``POST /playground/token`` (below), keeps them in ``sessionStorage`` per tenant and returns to
  the tenant's playground. GraphiQL then sends ``Authorization: Bearer <access token>`` on every
  request (and in the WebSocket ``connection_init`` payload); shortly before the token expires,
  or on a 401, the page uses the refresh token (rotated on each use) or asks to log in again.
  "Log out" revokes the refresh token, forgets the tokens and ends the Identity session.
- ``--dev-static-token``: no login; the headers editor holds an ``Authorization`` template.
- ``--no-auth``: no login, no headers.

Why the token exchange is forwarded through this service rather than sent to Identity from the
browser with CORS: the page's CSP stays ``connect-src 'self'`` (the only cross-origin traffic is
the top-level navigation to Identity's login and logout pages, which a redirect-based login
needs anyway); Identity keeps no CORS policy at all, so nothing has to compute which origins may
read responses of a token endpoint that also serves confidential clients; and it works when
Identity's public URL and the address services use (``WORKBENCH_IDENTITY_URL``) differ. The
forwarder is narrow: JSON bodies only (so no cross-site form can drive it), two grant types,
the fixed client id ``workbench-playground`` and this service's own callback URL as redirect
URI; the browser still proves possession of the PKCE verifier, and Identity does every check.
The service sees nothing it would not see anyway: the access token reaches it on every request.
"""

from __future__ import annotations

import html
import json
import logging
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path
from typing import Any

import httpx
from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.staticfiles import StaticFiles

from workbench.services.auth import Authenticator, NoAuthAuthenticator

__all__ = [
    "LOGIN_SCOPE",
    "PLAYGROUND_CLIENT",
    "STATIC_DIR",
    "IdentityLogin",
    "identity_login",
    "playground_html",
    "router",
    "static_files",
]

log = logging.getLogger("workbench.services.asset_repository.playground")

STATIC_DIR = Path(str(files("workbench.services.asset_repository") / "static"))

#: the public first-party OAuth client the playground logs in as (registered by ``workbench up``)
PLAYGROUND_CLIENT = "workbench-playground"
#: scopes the playground asks for: read and change data, who the user is, roles and tenants
LOGIN_SCOPE = "openid profile workbench_api roles allowed_tenants"

#: the page may talk to its own origin only (WebSocket included); GraphiQL sets inline styles
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; font-src 'self' data:; connect-src 'self'; "
    "frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
)
_PAGE_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    # the callback URL carries the authorization code: never send it on as a referrer
    "Referrer-Policy": "no-referrer",
}
_TOKEN_HEADERS = {"Cache-Control": "no-store", "Pragma": "no-cache"}
#: longest value the forwarder passes on (codes, verifiers and refresh tokens are far shorter)
_MAX_FIELD = 4096

SAMPLE_QUERY = """\
# Entities of a type (and its subtypes), keyset-paged. Press the play button (Ctrl-Enter).
# The Docs panel on the left lists every type generated from this tenant's CK model.
query {
  constructionKit { models { modelId } }
  runtime {
    runtimeEntities(first: 10) {
      items { rtId ckTypeId rtWellKnownName }
      pageInfo { hasNextPage endCursor }
    }
  }
}
"""

router = APIRouter(tags=["playground"])


@dataclass(frozen=True)
class IdentityLogin:
    """Where the playground logs in: Identity's public URL (the token issuer, which the browser
    is sent to) and the address this service reaches it at (for the token exchange)."""

    issuer: str
    backchannel: str
    client_id: str = PLAYGROUND_CLIENT
    scope: str = LOGIN_SCOPE

    @property
    def authorize_url(self) -> str:
        return f"{self.issuer}/authorize"

    @property
    def end_session_url(self) -> str:
        return f"{self.issuer}/end-session"


def identity_login(authenticator: Authenticator) -> IdentityLogin | None:
    """The Identity service the playground logs in with (None unless the service verifies
    Identity JWTs).

    Read from the authenticator, which is built from the settings (``issuer_url()``,
    ``WORKBENCH_IDENTITY_URL``): tokens are only useful if they come from the issuer it trusts,
    and its JWKS address is where this service already reaches Identity.
    """
    try:
        from workbench.identity.verification import RemoteJwks
        from workbench.services.auth import JwtAuthenticator
    except ImportError:  # the identity extra is not installed
        return None
    if not isinstance(authenticator, JwtAuthenticator):
        return None
    issuer = authenticator.verifier.issuer.rstrip("/")
    source = getattr(authenticator.verifier, "_jwks", None)
    backchannel = issuer
    if isinstance(source, RemoteJwks) and source.url.endswith("/jwks"):
        backchannel = source.url.removesuffix("/jwks").rstrip("/")
    return IdentityLogin(issuer=issuer, backchannel=backchannel)


def _auth_mode(authenticator: Authenticator, login: IdentityLogin | None) -> str:
    if login is not None:
        return "identity"
    if isinstance(authenticator, NoAuthAuthenticator):
        return "none"
    return "header"


def _attributes(values: dict[str, str]) -> str:
    return " ".join(f'{key}="{html.escape(value, quote=True)}"' for key, value in values.items())


def _head(title: str, static_prefix: str) -> str:
    return f"""<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>{html.escape(title)}</title>
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <meta name="referrer" content="no-referrer">
  <link rel="icon" href="data:,">
  <link rel="stylesheet" href="{static_prefix}/graphiql.min.css">
  <link rel="stylesheet" href="{static_prefix}/playground.css">
</head>"""


def playground_html(
    endpoint: str,
    *,
    needs_token: bool,
    static_prefix: str = "/static",
    tenant: str = "",
    login: IdentityLogin | None = None,
    redirect_uri: str = "",
    token_path: str = "",
    revoke_path: str = "",
) -> str:
    """The playground page for the GraphQL ``endpoint`` (a path on this origin).

    With ``login`` the page logs in through Identity (see the module docstring); otherwise it
    shows an ``Authorization`` template in the headers editor when ``needs_token``.
    """
    if login is not None:
        mode, headers = "identity", ""
    elif needs_token:
        mode, headers = "header", '{\n  "Authorization": "Bearer <your API token>"\n}'
    else:
        mode, headers = "none", ""
    config = {
        "data-endpoint": endpoint,
        "data-tenant": tenant,
        "data-auth-mode": mode,
        "data-default-query": SAMPLE_QUERY,
        "data-default-headers": headers,
    }
    if login is not None:
        config |= {
            "data-authorize-url": login.authorize_url,
            "data-end-session-url": login.end_session_url,
            "data-client-id": login.client_id,
            "data-scope": login.scope,
            "data-redirect-uri": redirect_uri,
            "data-token-url": token_path,
            "data-revoke-url": revoke_path,
        }
    bar = ""
    if mode == "identity":
        bar = """
  <header id="wb-auth" class="wb-auth" hidden>
    <span class="wb-auth-title">Mesh Workbench · GraphQL playground</span>
    <span id="wb-auth-status" class="wb-auth-status" role="status"></span>
    <button type="button" id="wb-login" class="wb-button" hidden>Log in</button>
    <button type="button" id="wb-logout" class="wb-button" hidden>Log out</button>
  </header>"""
    title = f"GraphQL playground · {tenant or endpoint}"
    return f"""{_head(title, static_prefix)}
<body class="wb-playground">{bar}
  <div id="graphiql">Loading the playground…</div>
  <script src="{static_prefix}/react.production.min.js"></script>
  <script src="{static_prefix}/react-dom.production.min.js"></script>
  <script src="{static_prefix}/graphiql.min.js"></script>
  <script src="{static_prefix}/playground-auth.js"></script>
  <script src="{static_prefix}/playground.js" {_attributes(config)}></script>
</body>
</html>
"""


def callback_html(
    login: IdentityLogin, *, redirect_uri: str, token_path: str, static_prefix: str = "/static"
) -> str:
    """The page Identity redirects back to: it exchanges the code and returns to the tenant."""
    config = {
        "data-authorize-url": login.authorize_url,
        "data-end-session-url": login.end_session_url,
        "data-client-id": login.client_id,
        "data-scope": login.scope,
        "data-redirect-uri": redirect_uri,
        "data-token-url": token_path,
    }
    return f"""{_head("Logging in · GraphQL playground", static_prefix)}
<body class="wb-callback">
  <main class="wb-message">
    <h1 id="wb-callback-title">Logging in…</h1>
    <p id="wb-callback-message" role="status">Finishing the login with the Identity service.</p>
    <p><button type="button" id="wb-callback-retry" class="wb-button" hidden>Log in again</button>
    </p>
  </main>
  <script src="{static_prefix}/playground-auth.js"></script>
  <script src="{static_prefix}/playground-callback.js" {_attributes(config)}></script>
</body>
</html>
"""


def _login_for(request: Request) -> IdentityLogin | None:
    return identity_login(request.app.state.service.authenticator)


def _callback_url(request: Request) -> str:
    return str(request.url_for("playground_callback"))


@router.get(
    "/tenants/{tenantId}/graphql/playground",
    name="playground",
    response_class=HTMLResponse,
    summary="GraphiQL playground for the tenant (works offline)",
)
async def playground(request: Request, tenantId: str) -> HTMLResponse:
    # The page holds no data; queries sent from it are authenticated like any other request.
    service = request.app.state.service
    endpoint = request.url_for("graphql_post", tenantId=tenantId).path
    login = identity_login(service.authenticator)
    page = playground_html(
        endpoint,
        needs_token=service.needs_token,
        tenant=tenantId,
        login=login,
        redirect_uri=_callback_url(request) if login else "",
        token_path=request.url_for("playground_token").path if login else "",
        revoke_path=request.url_for("playground_revoke").path if login else "",
    )
    return HTMLResponse(page, headers=_PAGE_HEADERS)


@router.get(
    "/playground/callback",
    name="playground_callback",
    response_class=HTMLResponse,
    summary="Where the Identity service returns after the playground's login",
)
async def playground_callback(request: Request) -> HTMLResponse:
    login = _login_for(request)
    if login is None:
        return HTMLResponse(
            "<!doctype html><title>Playground</title><p>This service does not log in through "
            "the Identity service; open /tenants/&lt;tenant&gt;/graphql/playground.</p>",
            404,
            headers=_PAGE_HEADERS,
        )
    page = callback_html(
        login,
        redirect_uri=_callback_url(request),
        token_path=request.url_for("playground_token").path,
    )
    return HTMLResponse(page, headers=_PAGE_HEADERS)


def _oauth_error(status: int, error: str, description: str) -> JSONResponse:
    return JSONResponse(
        {"error": error, "error_description": description}, status, headers=_TOKEN_HEADERS
    )


async def _json_fields(request: Request, names: tuple[str, ...]) -> dict[str, str] | Response:
    """The string fields ``names`` of a JSON body, or the error response to send."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "application/json":
        # a cross-site page can post forms, but not JSON without a CORS preflight we never allow
        return _oauth_error(415, "invalid_request", "send the parameters as application/json")
    try:
        body: Any = json.loads(await request.body())
    except (ValueError, UnicodeDecodeError):
        return _oauth_error(400, "invalid_request", "the body is not valid JSON")
    if not isinstance(body, dict):
        return _oauth_error(400, "invalid_request", "the body must be a JSON object")
    fields: dict[str, str] = {}
    for name in names:
        value = body.get(name)
        if not isinstance(value, str) or not value or len(value) > _MAX_FIELD:
            return _oauth_error(400, "invalid_request", f"{name} is missing or not valid")
        fields[name] = value
    return fields


async def _forward(login: IdentityLogin, path: str, form: dict[str, str]) -> Response:
    """POST ``form`` to Identity's ``path`` and relay the answer (status and JSON body)."""
    url = f"{login.backchannel}{path}"
    try:
        async with httpx.AsyncClient(timeout=10.0) as client:
            answer = await client.post(url, data=form, headers={"Accept": "application/json"})
    except httpx.HTTPError as exc:
        log.warning("playground: Identity at %s not reachable: %s", url, exc)
        return _oauth_error(
            502,
            "temporarily_unavailable",
            f"the Identity service at {login.backchannel} is not reachable; try again shortly",
        )
    if not answer.content:
        return Response(status_code=answer.status_code, headers=_TOKEN_HEADERS)
    try:
        body = answer.json()
    except ValueError:
        return _oauth_error(502, "server_error", "the Identity service sent an unreadable answer")
    return JSONResponse(body, answer.status_code, headers=_TOKEN_HEADERS)


@router.post(
    "/playground/token",
    name="playground_token",
    summary="The playground's token exchange, forwarded to the Identity service",
    description="JSON body: `{grant_type: authorization_code, code, code_verifier}` or "
    "`{grant_type: refresh_token, refresh_token}`; relays Identity's token response.",
)
async def playground_token(request: Request) -> Response:
    login = _login_for(request)
    if login is None:
        return _oauth_error(404, "invalid_request", "this service does not use Identity logins")
    fields = await _json_fields(request, ("grant_type",))
    if isinstance(fields, Response):
        return fields
    grant_type = fields["grant_type"]
    form = {"grant_type": grant_type, "client_id": login.client_id}
    if grant_type == "authorization_code":
        extra = await _json_fields(request, ("code", "code_verifier"))
        if isinstance(extra, Response):
            return extra
        form |= extra | {"redirect_uri": _callback_url(request)}
    elif grant_type == "refresh_token":
        extra = await _json_fields(request, ("refresh_token",))
        if isinstance(extra, Response):
            return extra
        form |= extra
    else:
        return _oauth_error(
            400,
            "unsupported_grant_type",
            "the playground exchanges authorization codes and refresh tokens only",
        )
    return await _forward(login, "/token", form)


@router.post(
    "/playground/revoke",
    name="playground_revoke",
    summary="Revoke the playground's refresh token at the Identity service (log out)",
)
async def playground_revoke(request: Request) -> Response:
    login = _login_for(request)
    if login is None:
        return _oauth_error(404, "invalid_request", "this service does not use Identity logins")
    fields = await _json_fields(request, ("token",))
    if isinstance(fields, Response):
        return fields
    form = {
        "token": fields["token"],
        "token_type_hint": "refresh_token",
        "client_id": login.client_id,
    }
    return await _forward(login, "/revoke", form)


def static_files() -> StaticFiles:
    """The vendored assets, mounted at ``/static``."""
    return StaticFiles(directory=STATIC_DIR)
