"""The processes of ``workbench serve asset-repository --workers N``.

:func:`run_workers` (the parent) checks the port is free, starts N worker processes and starts
a worker again when it dies; SIGINT/SIGTERM stop them all. Each worker (:func:`worker_main`)
binds the port with ``SO_REUSEPORT`` (the kernel spreads new connections over the workers);
worker 0, the primary, also listens on its Unix socket (:func:`.workers.primary_socket`). How
requests are shared between them: :mod:`.workers`.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from workbench.errors import ValidationError
from workbench.services.asset_repository.workers import primary_socket

__all__ = ["WorkerOptions", "run_workers", "worker_main"]

log = logging.getLogger("workbench.services.asset_repository.workers")


@dataclass(frozen=True)
class WorkerOptions:
    """What a worker process is started with; its other settings come from the environment
    it inherits (``WORKBENCH_*``), as for ``workbench serve``."""

    home: Path
    host: str
    port: int
    no_auth: bool = False
    dev_static_token: bool = False
    log_level: str = "info"
    log_format: str | None = None
    #: HTTPS on the port (PEM certificate chain and key); the primary's Unix socket stays plain
    #: HTTP (only this user reaches it: mode 0600 in the data directory)
    ssl_certfile: str | None = None
    ssl_keyfile: str | None = None

    def to_json(self) -> str:
        return json.dumps({**asdict(self), "home": str(self.home)})

    @classmethod
    def from_json(cls, text: str) -> WorkerOptions:
        data = json.loads(text)
        return cls(**{**data, "home": Path(data["home"])})


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    return sock


def worker_main(argv: list[str]) -> None:  # pragma: no cover - runs in the worker process
    """A worker process: ``argv`` is ``[index, options as JSON]``."""
    import uvicorn

    from workbench.logs import configure_logging
    from workbench.messaging.tenants import service_bus
    from workbench.services.app import install_log_context
    from workbench.services.asset_repository.app import create_app
    from workbench.settings import Settings

    index, options = int(argv[0]), WorkerOptions.from_json(argv[1])
    settings = Settings()
    configure_logging(logging.INFO, options.log_format or settings.log_format)
    install_log_context()
    update: dict[str, Any] = {"home": options.home}
    if options.dev_static_token:
        update["dev_static_token"] = True
    settings = settings.model_copy(update=update)
    sockets = [_bind(options.host, options.port)]
    sockets[0].listen(2048)
    path = primary_socket(options.home, options.port)
    if index == 0:
        path.unlink(missing_ok=True)
        inner = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        inner.bind(str(path))
        os.chmod(path, 0o600)
        inner.listen(2048)
        sockets.append(inner)
    app = create_app(
        settings,
        no_auth=options.no_auth,
        tune_collector=True,
        bus=service_bus(settings, embedded_default=True),
        primary=(path, index) if index else None,
        worker_index=index,
    )
    tls = {"ssl_certfile": options.ssl_certfile, "ssl_keyfile": options.ssl_keyfile}
    if options.ssl_certfile is None or len(sockets) == 1:
        config = uvicorn.Config(app, **_options(options.log_level, **tls))
        uvicorn.Server(config).run(sockets=sockets)
        return
    # the primary with HTTPS: the port with TLS, its Unix socket (the workers' forwarding)
    # plain, as two servers of one app in one event loop (the app's lifespan runs once)
    public = uvicorn.Server(uvicorn.Config(app, **_options(options.log_level, **tls)))
    private = uvicorn.Server(
        uvicorn.Config(app, lifespan="off", **_options(options.log_level, None, None))
    )

    async def serve_both() -> None:
        inner_task = asyncio.create_task(private.serve(sockets=[sockets[1]]))
        try:
            await public.serve(sockets=[sockets[0]])
        finally:
            private.should_exit = True
            await inner_task

    from uvicorn._compat import asyncio_run

    asyncio_run(serve_both(), loop_factory=public.config.get_loop_factory())


def _options(log_level: str, ssl_certfile: str | None, ssl_keyfile: str | None) -> dict[str, Any]:
    from workbench.services.app import uvicorn_options

    return uvicorn_options(
        log_level=log_level,
        ssl_certfile=Path(ssl_certfile) if ssl_certfile else None,
        ssl_keyfile=Path(ssl_keyfile) if ssl_keyfile else None,
    )


_WORKER_CODE = (
    "import sys; from workbench.services.asset_repository.worker_processes import worker_main; "
    "worker_main(sys.argv[1:])"
)


def run_workers(options: WorkerOptions, workers: int) -> None:
    """Run ``workers`` Asset Repository processes on ``options.port`` until SIGINT/SIGTERM."""
    from workbench.services.up import _die_with_parent

    if workers < 1:
        raise ValidationError(f"--workers must be 1 or more, got {workers}")
    # bound, never listening: checks the port is free and keeps it for this user meanwhile
    reserved = _bind(options.host, options.port)
    if options.port == 0:
        options = replace(options, port=reserved.getsockname()[1])
    primary_socket(options.home, options.port).parent.mkdir(parents=True, exist_ok=True)
    stopping = threading.Event()

    def start(index: int) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [sys.executable, "-c", _WORKER_CODE, str(index), options.to_json()],
            preexec_fn=_die_with_parent,  # noqa: PLW1509 - only prctl, no locks taken
        )

    def stop(_signum: int, _frame: Any) -> None:
        stopping.set()

    previous = {s: signal.signal(s, stop) for s in (signal.SIGINT, signal.SIGTERM)}
    processes = [start(i) for i in range(workers)]
    log.info("asset repository workers started", extra={"workers": workers})
    try:
        while not stopping.wait(0.5):
            for index, process in enumerate(processes):
                if process.poll() is not None and not stopping.is_set():
                    log.warning(
                        "asset repository worker %d exited (status %s); starting it again",
                        index,
                        process.returncode,
                    )
                    processes[index] = start(index)
    finally:
        for process in processes:
            if process.poll() is None:
                process.terminate()
        for process in processes:
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        reserved.close()
        primary_socket(options.home, options.port).unlink(missing_ok=True)
