"""A real HTTP server for tests: an ASGI app under uvicorn on a free loopback port.

>>> with ServiceServer(app) as server:          # doctest: +SKIP
...     httpx.get(f"{server.url}/healthz")

The socket is bound before the server starts (port 0, chosen by the kernel), so there is no race
for the port; the server runs in a daemon thread with its own event loop and stops on exit.
"""

from __future__ import annotations

import socket
import threading
import time
from typing import Any

from workbench.testing.background import BackgroundServer

__all__ = ["DeferredApp", "ServiceServer", "free_port"]


def free_port(host: str = "127.0.0.1") -> int:
    """A port free on ``host`` right now (for subprocess servers that bind themselves)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


class DeferredApp:
    """An ASGI app whose real app (``app``) is set once the server runs: an Identity service
    needs its issuer URL, and so the server's port, before it can be built."""

    def __init__(self) -> None:
        self.app: Any = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await self.app(scope, receive, send)


class ServiceServer(BackgroundServer):
    """Runs ``app`` with uvicorn on ``host`` (loopback) in a background thread."""

    def __init__(self, app: Any, *, host: str = "127.0.0.1", startup_timeout: float = 20.0) -> None:
        import uvicorn

        self.host = host
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._socket.bind((host, 0))
        self.port = int(self._socket.getsockname()[1])
        config = uvicorn.Config(
            app,
            log_config=None,
            access_log=False,
            ws="websockets-sansio",
            lifespan="on",
            timeout_graceful_shutdown=5,
        )
        self.server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self.server.run,
            kwargs={"sockets": [self._socket]},
            daemon=True,
            name=f"uvicorn-{self.port}",
        )
        self._startup_timeout = startup_timeout

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://{self.host}:{self.port}"

    def start(self) -> ServiceServer:
        self._thread.start()
        deadline = time.monotonic() + self._startup_timeout
        while not self.server.started:
            if not self._thread.is_alive():
                raise RuntimeError(f"the test server on port {self.port} failed to start")
            if time.monotonic() > deadline:
                raise TimeoutError(f"the test server on port {self.port} did not start in time")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self._thread.join(timeout=15)
        self._socket.close()
