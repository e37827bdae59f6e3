"""An in-process tenant with Demo.Energy, its sample entities and the BotJobs library; a local
HTTP receiver for service hooks."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import DEMO_LIBRARY, DEMO_RUNTIME
from workbench.client.local import Workbench, open_workbench

BOT_JOBS_LIBRARY = Path(__file__).with_name("BotJobs.compiled.yaml")


def seed(tenant: Any, *, demo: bool = True) -> Any:
    from workbench.runtime.files import import_runtime_file

    if demo:
        tenant.ck.import_library(DEMO_LIBRARY)
        import_runtime_file(tenant.entities, tenant.model, DEMO_RUNTIME)
    tenant.ck.import_library(BOT_JOBS_LIBRARY)
    return tenant


@pytest.fixture
def home(tmp_path: Path) -> Iterator[Workbench]:
    workbench = open_workbench(tmp_path / "wb")
    try:
        yield workbench
    finally:
        workbench.close()


@pytest.fixture
def tenant(home: Workbench) -> Any:
    return seed(home.tenants.create("jobs"))


class Receiver:
    """An ASGI app that keeps the JSON bodies and headers POSTed to it (500 on /fail)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, str], Any]] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers = {k.decode(): v.decode() for k, v in scope["headers"]}
        self.calls.append((scope["path"], headers, json.loads(body or b"null")))
        status = 500 if scope["path"].endswith("/fail") else 200
        await send({"type": "http.response.start", "status": status, "headers": []})
        await send({"type": "http.response.body", "body": b"{}"})
