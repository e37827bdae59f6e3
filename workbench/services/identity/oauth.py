"""The Identity service's protocol endpoints: discovery, JWKS, token, revocation (RFC 7009),
introspection (RFC 7662), device authorization (RFC 8628), userinfo, end-session, and the
revocation list the other services poll (``/revocations``).
"""

from __future__ import annotations

import base64
import json
from urllib.parse import urlencode

from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response

from workbench.errors import Unauthenticated
from workbench.identity.tokens import Subject, userinfo_claims
from workbench.services.auth import bearer_token
from workbench.services.identity.service import (
    SESSION_COOKIE,
    http_request,
    service_of,
    to_response,
)

__all__ = ["router"]

router = APIRouter()


# ---------------------------------------------------------------- discovery and keys


@router.get("/.well-known/openid-configuration", tags=["oidc"], summary="OIDC discovery")
async def discovery(request: Request) -> JSONResponse:
    return JSONResponse(service_of(request).provider.discovery())


@router.get("/jwks", tags=["oidc"], summary="Published signing keys (current and previous)")
async def jwks(request: Request) -> JSONResponse:
    return JSONResponse(
        service_of(request).provider.keys.jwks(), headers={"Cache-Control": "max-age=300"}
    )


# ---------------------------------------------------------------- token endpoints


@router.post("/token", tags=["oidc"], summary="Token endpoint (all grants)")
async def token(request: Request) -> Response:
    http = await http_request(request)
    provider = service_of(request).provider
    return to_response(await run_in_threadpool(provider.token_response, http))


@router.post("/revoke", tags=["oidc"], summary="Token revocation (RFC 7009)")
async def revoke(request: Request) -> Response:
    http = await http_request(request)
    provider = service_of(request).provider
    return to_response(await run_in_threadpool(provider.endpoint_response, "revocation", http))


@router.post("/introspect", tags=["oidc"], summary="Token introspection (RFC 7662)")
async def introspect(request: Request) -> Response:
    http = await http_request(request)
    provider = service_of(request).provider
    return to_response(await run_in_threadpool(provider.endpoint_response, "introspection", http))


@router.post("/device_authorization", tags=["oidc"], summary="Device authorization (RFC 8628)")
async def device_authorization(request: Request) -> Response:
    http = await http_request(request)
    provider = service_of(request).provider
    return to_response(
        await run_in_threadpool(provider.endpoint_response, "device_authorization", http)
    )


def _unauthorized(message: str, error: str | None = "invalid_token") -> JSONResponse:
    """401 with the RFC 6750 section 3.1 challenge (no error code when the request carried
    no credentials at all)."""
    challenge = "Bearer"
    if error is not None:
        quoted = message.replace("\\", "/").replace('"', "'")
        challenge = f'Bearer error="{error}", error_description="{quoted}"'
    body = {"code": "UNAUTHENTICATED", "message": message}
    if error is not None:
        body["error"] = error
    return JSONResponse(body, 401, headers={"WWW-Authenticate": challenge})


# two routes, not one api_route with both methods: that gives both the same OpenAPI operation id
# (FastAPI warns, and the schema is invalid)
@router.get("/userinfo", tags=["oidc"], summary="UserInfo", operation_id="userinfo_get")
@router.post("/userinfo", tags=["oidc"], summary="UserInfo (POST)", operation_id="userinfo_post")
async def userinfo(request: Request) -> JSONResponse:
    service = service_of(request)
    try:
        token_value = bearer_token(request)
    except Unauthenticated as exc:
        return _unauthorized(exc.message, "invalid_request")
    if token_value is None:
        return _unauthorized("send the access token as 'Authorization: Bearer <token>'", None)
    try:
        claims = service.provider.verifier.verify(token_value)
    except Unauthenticated as exc:
        return _unauthorized(exc.message)
    if service.provider.tokens.revoked(claims):
        return _unauthorized("the token has been revoked; sign in again")
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


# ---------------------------------------------------------------- end session


@router.get("/end-session", tags=["oidc"], summary="RP-initiated logout")
async def end_session(request: Request) -> Response:
    service = service_of(request)
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
    service.end_session(request)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


def _unverified_aud(token_value: str) -> str:
    payload = token_value.split(".")[1]
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    aud = claims.get("aud")
    return str(aud[0] if isinstance(aud, list) else aud)


# ---------------------------------------------------------------- revocation list


@router.get(
    "/revocations",
    tags=["oidc"],
    summary="Revoked access tokens (token ids with their expiry) and client generations",
)
async def revocations(request: Request) -> JSONResponse:
    """What every service polls (about every second) to refuse revoked access tokens before
    they expire; holds no secret (ids of tokens that no longer work)."""
    document = await run_in_threadpool(service_of(request).provider.tokens.revocations.document)
    return JSONResponse(document, headers={"Cache-Control": "no-store"})
