"""``/healthz`` (the process answers) and ``/readyz`` (it can serve: its stores respond)."""

from __future__ import annotations

import logging
import time
from typing import Any

from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse

__all__ = ["router"]

log = logging.getLogger("workbench.services.health")

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="Liveness: the process answers")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


def _check_system_store(service: Any) -> dict[str, Any]:
    start = time.perf_counter()
    tenants = len(service.workbench.tenants.list())
    return {"ok": True, "tenants": tenants, "ms": round((time.perf_counter() - start) * 1000, 2)}


@router.get(
    "/readyz",
    summary="Readiness: the tenant registry answers",
    responses={503: {"description": "not ready; the body says which check failed"}},
)
async def readyz(request: Request) -> JSONResponse:
    service = request.app.state.service
    checks: dict[str, Any] = {"authenticator": {"ok": True, "name": service.authenticator.name}}
    try:
        checks["systemStore"] = await run_in_threadpool(_check_system_store, service)
    except Exception as exc:  # any failure means "not ready"; the log has the cause
        log.warning("readiness check failed: %s", exc)
        checks["systemStore"] = {"ok": False, "error": type(exc).__name__}
    ready = all(check["ok"] for check in checks.values())
    return JSONResponse(
        {"status": "ready" if ready else "not ready", "checks": checks}, 200 if ready else 503
    )
