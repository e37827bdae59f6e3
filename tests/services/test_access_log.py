"""The access log shows what people and programs do: successful probes and polls (/healthz,
/readyz, /metrics) log at DEBUG, every other request (and a failing probe) at INFO."""

from __future__ import annotations

import logging
import time

import pytest

from tests.services.conftest import ALL_TOKEN, client_for
from workbench.testing.http import ServiceServer


def _logged(caplog: pytest.LogCaptureFixture, path: str) -> list[logging.LogRecord]:
    return [
        r
        for r in caplog.records
        if r.name == "workbench.services.access" and getattr(r, "path", None) == path
    ]


def test_probes_log_at_debug_and_requests_at_info(
    server: ServiceServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="workbench.services.access")
    with client_for(server, ALL_TOKEN) as http:
        assert http.get("/healthz").status_code == 200
        assert http.get("/metrics").status_code == 200
        assert http.get("/tenants/energy/ck/libraries").status_code == 200
    deadline = time.monotonic() + 5  # the line is written after the response is sent
    while len(_logged(caplog, "/tenants/energy/ck/libraries")) < 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert [r.levelno for r in _logged(caplog, "/healthz")] == [logging.DEBUG]
    assert [r.levelno for r in _logged(caplog, "/metrics")] == [logging.DEBUG]
    assert [r.levelno for r in _logged(caplog, "/tenants/energy/ck/libraries")] == [logging.INFO]
