"""Service hooks: ``System.Bot/ServiceHook`` entities that name a URL and a selection.

For each enabled hook the bot finds the entities of ``QueryCkTypeId`` matching ``FieldFilter``
and POSTs them to ``BaseUri`` (+ ``Action``) as JSON::

    {"hook": "<name>", "hookRtId": "...", "tenant": "...", "ckTypeId": "...",
     "count": 2, "rtIds": ["...", "..."]}

with ``X-Api-Key: <ApiKey>`` when one is set. ``LastRunAt`` and ``LastStatus`` record the
answer. Run it on a schedule, or on entity events (``--on-event TYPE``) to call on change: with
the run's ``event`` only the hooks of that entity's type are called, with that entity alone (and
only when it matches the hook's filter), and the body also has ``"event": "<updateType>"``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

import httpx

from workbench.bots.builtin.selection import find_all
from workbench.errors import ValidationError

__all__ = ["SERVICE_HOOK_TYPE", "HookCall", "call_service_hooks", "hook_url"]

SERVICE_HOOK_TYPE = "System.Bot/ServiceHook"


@dataclass
class HookCall:
    rt_id: str
    name: str
    url: str
    entities: int
    status: int | None
    ok: bool
    message: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def hook_url(base: str, action: str | None) -> str:
    """``base`` with ``action`` appended as a path (one slash between them)."""
    if not base.startswith(("http://", "https://")):
        raise ValidationError(
            f"service hook BaseUri {base!r} is not an http(s) URL; set it to e.g. "
            "https://example.org/hooks"
        )
    return base.rstrip("/") + "/" + action.lstrip("/") if action else base


def call_service_hooks(
    tenant: Any,
    *,
    names: list[str] | None = None,
    timeout: float = 30.0,
    now: datetime | None = None,
    http: httpx.Client | None = None,
    event: dict[str, Any] | None = None,
) -> list[HookCall]:
    """Call every enabled hook (or those ``names``; with ``event``, those of its type — see the
    module doc); a failing hook does not stop the others."""
    hooks = [
        h
        for h in find_all(tenant, SERVICE_HOOK_TYPE)
        if h.attributes.get("enabled", True) is not False
        and (names is None or h.attributes.get("name") in names)
        and (event is None or h.attributes.get("queryCkTypeId") == event.get("ckTypeId"))
    ]
    client = http or httpx.Client(timeout=timeout)
    calls: list[HookCall] = []
    try:
        for hook in hooks:
            call = _call(tenant, hook, client, event)
            if call is None:
                continue  # the event's entity does not match this hook's filter
            calls.append(call)
            tenant.entities.update(
                hook.rt_id,
                {
                    "lastRunAt": (now or datetime.now(UTC)).isoformat(),
                    "lastStatus": calls[-1].message[:500],
                },
            )
    finally:
        if http is None:
            client.close()
    return calls


def _call(
    tenant: Any, hook: Any, client: httpx.Client, event: dict[str, Any] | None
) -> HookCall | None:
    attributes = hook.attributes
    name = str(attributes.get("name", hook.rt_id))
    url = str(attributes.get("baseUri", ""))
    try:
        url = hook_url(url, attributes.get("action"))
        type_id = str(attributes["queryCkTypeId"])
        only = [str(event["rtId"])] if event is not None else None
        found = find_all(tenant, type_id, attributes.get("fieldFilter"), rt_ids=only)
        rt_ids = [e.rt_id for e in found]
    except Exception as exc:
        return HookCall(hook.rt_id, name, url, 0, None, False, f"not called: {exc}")
    if event is not None and not rt_ids:
        return None
    headers = {"User-Agent": "workbench-service-hook"}
    if attributes.get("apiKey"):
        headers["X-Api-Key"] = str(attributes["apiKey"])
    body = {
        "hook": name,
        "hookRtId": hook.rt_id,
        "tenant": tenant.id,
        "ckTypeId": type_id,
        "count": len(rt_ids),
        "rtIds": rt_ids,
    }
    if event is not None:
        body["event"] = event.get("updateType")
    try:
        response = client.post(url, json=body, headers=headers)
    except httpx.HTTPError as exc:
        return HookCall(hook.rt_id, name, url, len(rt_ids), None, False, f"unreachable: {exc}")
    ok = response.is_success
    message = f"{response.status_code} {response.reason_phrase}, {len(rt_ids)} entities"
    return HookCall(hook.rt_id, name, url, len(rt_ids), response.status_code, ok, message)
