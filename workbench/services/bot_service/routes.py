"""REST routes of the Bot Service: bots, runs, and promotions of a tenant.

Reads need the tenant's read operation, everything that starts, changes or promotes needs the
entity-write operation (role Development), a ``ck`` promotion the CK-import operation — the
checks of :mod:`workbench.services.access`, as at the Asset Repository.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import FileResponse, HTMLResponse, PlainTextResponse
from pydantic import BaseModel, Field

from workbench.errors import Forbidden, NotFound
from workbench.services.access import EntityWriteAccess, ReadAccess, service_state
from workbench.services.authorization import CK_IMPORT_SCOPE

__all__ = ["router"]

router = APIRouter(prefix="/tenants/{tenantId}", tags=["bots"])


def _bot_view(service: Any, tenant_id: str, bot: Any) -> dict[str, Any]:
    history = service.scheduler.history(tenant_id)
    state = history.state(bot.name)
    last = history.last(bot.name)
    return {
        "name": bot.name,
        "version": bot.artifact.version,
        "author": bot.artifact.author,
        "schedule": bot.settings.schedule.describe(),
        "settings": bot.settings.to_dict(),
        "enabled": state.enabled,
        "nextFire": state.next_fire,
        "lastRun": last.to_dict() if last else None,
    }


@router.get("/bots", summary="The tenant's deployed bots")
def list_bots(request: Request, access: ReadAccess) -> list[dict[str, Any]]:
    service = service_state(request)
    return [
        _bot_view(service, access.tenant.id, b) for b in service.scheduler.bots(access.tenant.id)
    ]


@router.get("/bots/{name}", summary="One bot: schedule, state, last run")
def show_bot(request: Request, access: ReadAccess, name: str) -> dict[str, Any]:
    service = service_state(request)
    return _bot_view(service, access.tenant.id, service.scheduler.bot(access.tenant.id, name))


class RunBody(BaseModel):
    parameters: dict[str, Any] = Field(default_factory=dict)
    wait: bool = False
    timeout: float = 600.0


@router.post("/bots/{name}/runs", summary="Run a bot now (manual trigger)")
def run_bot(
    request: Request, access: EntityWriteAccess, name: str, body: RunBody | None = None
) -> dict[str, Any]:
    service = service_state(request)
    body = body or RunBody()
    record = service.scheduler.trigger(
        access.tenant.id,
        name,
        trigger=f"manual:{access.principal.subject}",
        parameters=body.parameters,
    )
    if body.wait and not record.final:
        record = service.scheduler.wait(access.tenant.id, name, record.run_id, body.timeout)
    result: dict[str, Any] = record.to_dict()
    return result


@router.get("/bots/{name}/runs", summary="A bot's runs, newest first")
def list_runs(
    request: Request, access: ReadAccess, name: str, limit: int = Query(50, ge=1, le=1000)
) -> list[dict[str, Any]]:
    history = service_state(request).scheduler.history(access.tenant.id)
    return [r.to_dict() for r in history.runs(name, limit)]


@router.get("/bots/{name}/runs/{run_id}", summary="One run's record")
def show_run(request: Request, access: ReadAccess, name: str, run_id: str) -> dict[str, Any]:
    history = service_state(request).scheduler.history(access.tenant.id)
    result: dict[str, Any] = history.get(name, run_id).to_dict()
    return result


def _run_file(request: Request, tenant_id: str, name: str, run_id: str, file: str) -> Any:
    history = service_state(request).scheduler.history(tenant_id)
    record = history.get(name, run_id)
    folder = history.run_dir(name, run_id)
    attempt = str(record.details.get("folder") or "")
    if attempt.startswith("attempt-"):
        folder = folder / attempt
    path = folder / file
    if not path.is_file():
        raise NotFound(f"run {run_id} of bot {name!r} has no {file} (status {record.status})")
    return path


@router.get("/bots/{name}/runs/{run_id}/html", summary="The executed notebook as HTML")
def run_html(request: Request, access: ReadAccess, name: str, run_id: str) -> HTMLResponse:
    path = _run_file(request, access.tenant.id, name, run_id, "output.html")
    return HTMLResponse(path.read_text(encoding="utf-8"))


@router.get("/bots/{name}/runs/{run_id}/notebook", summary="The executed notebook")
def run_notebook(request: Request, access: ReadAccess, name: str, run_id: str) -> FileResponse:
    path = _run_file(request, access.tenant.id, name, run_id, "output.ipynb")
    return FileResponse(path, media_type="application/x-ipynb+json")


@router.get("/bots/{name}/runs/{run_id}/log", summary="The run's log (kernel output)")
def run_log(request: Request, access: ReadAccess, name: str, run_id: str) -> PlainTextResponse:
    parts = []
    for file in ("run.log", "runner.log"):
        try:
            path = _run_file(request, access.tenant.id, name, run_id, file)
        except NotFound:
            continue
        parts.append(path.read_text(encoding="utf-8", errors="replace"))
    return PlainTextResponse("".join(parts))


@router.post("/bots/{name}/enable", summary="Let the bot's schedule fire")
def enable_bot(request: Request, access: EntityWriteAccess, name: str) -> dict[str, Any]:
    state = service_state(request).scheduler.set_enabled(access.tenant.id, name, True)
    return {"name": name, "enabled": state.enabled}


@router.post("/bots/{name}/disable", summary="Stop the bot's schedule (manual runs still work)")
def disable_bot(request: Request, access: EntityWriteAccess, name: str) -> dict[str, Any]:
    state = service_state(request).scheduler.set_enabled(access.tenant.id, name, False)
    return {"name": name, "enabled": state.enabled}


class PromoteBody(BaseModel):
    notebook: dict[str, Any]
    kind: str
    name: str
    #: the CLI's options by their Python names (``every``, ``on_event``, ``event_filter``, ...);
    #: ``no_run: true`` skips a bot's validation run as ``--no-run`` does
    options: dict[str, Any] = Field(default_factory=dict)


def _check_roles(principal: Any, roles: Any) -> None:
    """A bot may hold extra roles only when the one promoting it holds them (static-token and
    no-auth principals carry no roles and may grant any)."""
    if not principal.roles and (principal.anonymous or principal.subject.startswith("static")):
        return
    missing = sorted(set(roles) - set(principal.roles))
    if missing:
        raise Forbidden(
            f"{principal.subject} may not give a bot the role(s) {', '.join(missing)} it does "
            "not hold itself; ask a tenant owner to promote it"
        )


@router.post("/promotions", tags=["promotions"], summary="Promote a notebook")
def promote(request: Request, access: EntityWriteAccess, body: PromoteBody) -> dict[str, Any]:
    if body.kind == "ck":
        access.principal.check_scope(CK_IMPORT_SCOPE)
    if body.kind == "bot":
        from workbench.bots.schedules import BotSettings

        settings = BotSettings.from_options(body.notebook, body.options)
        _check_roles(access.principal, settings.roles)
    service = service_state(request)
    options = dict(body.options)
    no_run = bool(options.pop("no_run", False))
    # the same validation run as `workbench promote` (Promotions.run_check)
    result = service.promotions.promote(
        access.tenant.id,
        body.notebook,
        kind=body.kind,
        name=body.name,
        author=access.principal.subject,
        options=options,
        validation_run=not no_run,
    )
    service.scheduler.scan()
    data: dict[str, Any] = result.to_dict()
    return data


@router.get("/promotions", tags=["promotions"], summary="The tenant's promotions")
def list_promotions(
    request: Request, access: ReadAccess, kind: str | None = None
) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = service_state(request).promotions.list(access.tenant.id, kind)
    return rows


@router.get("/promotions/{name}", tags=["promotions"], summary="A promotion's version")
def show_promotion(
    request: Request, access: ReadAccess, name: str, version: int | None = None
) -> dict[str, Any]:
    data: dict[str, Any] = service_state(request).promotions.show(access.tenant.id, name, version)
    return data


class RollbackBody(BaseModel):
    to: int | None = None


@router.post("/promotions/{name}/rollback", tags=["promotions"], summary="Roll back")
def rollback(
    request: Request, access: EntityWriteAccess, name: str, body: RollbackBody | None = None
) -> dict[str, Any]:
    service = service_state(request)
    result = service.promotions.rollback(
        access.tenant.id, name, by=access.principal.subject, to=(body or RollbackBody()).to
    )
    service.scheduler.scan()
    data: dict[str, Any] = result.to_dict()
    return data


@router.post("/promotions/{name}/retire", tags=["promotions"], summary="Retire")
def retire(request: Request, access: EntityWriteAccess, name: str) -> dict[str, Any]:
    service = service_state(request)
    deployment = service.promotions.retire(access.tenant.id, name, by=access.principal.subject)
    service.scheduler.scan()
    data: dict[str, Any] = deployment.to_dict()
    return data
