"""Bearer tokens of an OAuth client that acts for itself (the client-credentials grant), kept
fresh for a long-running process: a promoted adapter in the pool runs for days, its access
tokens live minutes (900 s by default).

:class:`ClientCredentialsAuth` is an :class:`httpx.Auth`: it fetches a token on first use and
again shortly before the current one expires, and once more when a request is refused with 401
(a rotated secret's tokens are revoked early), then repeats that request with the new token.
:meth:`ClientCredentialsAuth.token` gives the current token to what is not httpx (a WebSocket
connect).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Generator

import httpx

__all__ = ["ClientCredentialsAuth", "TokenFetch"]

#: fetches a new token: ``(access token, seconds it is valid)``
TokenFetch = Callable[[], tuple[str, float]]


class ClientCredentialsAuth(httpx.Auth):
    """Bearer auth with tokens from ``fetch``, renewed ``margin`` seconds before they expire
    (at half their lifetime when they live less than twice that) and after a 401."""

    #: the body is read first, so that a request refused with 401 can be sent again
    requires_request_body = True

    def __init__(self, fetch: TokenFetch, *, margin: float = 60.0) -> None:
        self._fetch = fetch
        self._margin = margin
        self._lock = threading.Lock()
        self._token: str | None = None
        self._renew_at = 0.0

    def token(self, *, refresh: bool = False) -> str:
        """The current access token (a new one when it is due, or with ``refresh``)."""
        with self._lock:
            if refresh or self._token is None or time.monotonic() >= self._renew_at:
                token, lifetime = self._fetch()
                self._token = token
                # margin seconds before the end; a token shorter than twice that: at half-life
                self._renew_at = time.monotonic() + max(lifetime - self._margin, lifetime / 2)
            return self._token

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        sent = self.token()
        request.headers["Authorization"] = f"Bearer {sent}"
        response = yield request
        if response.status_code == 401:
            with self._lock:
                stale = self._token == sent
            fresh = self.token(refresh=stale)  # another thread may have renewed it already
            request.headers["Authorization"] = f"Bearer {fresh}"
            yield request
