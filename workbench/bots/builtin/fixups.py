"""Fixups: ``System.Bot/Fixup`` entities whose ``Script`` (Python) runs once, in ``Order``.

A script runs with ``wb`` bound to the tenant (the bot's client) and may change anything the
bot may. The outcome is written on the fixup: ``State`` Applied or Failed, ``AppliedAt``, what
it printed (``Output``) and the error (``Error``). An Applied fixup never runs again; a Failed
one only with ``retry_failed``. Fixups after a failed one wait until it is applied (later
fixups may depend on it).
"""

from __future__ import annotations

import contextlib
import io
import traceback
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from workbench.bots.builtin.selection import find_all

__all__ = ["FIXUP_TYPE", "FixupOutcome", "run_fixups"]

FIXUP_TYPE = "System.Bot/Fixup"
_MAX_TEXT = 10_000


@dataclass
class FixupOutcome:
    rt_id: str
    name: str
    order: int
    state: str
    output: str = ""
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _clip(text: str) -> str:
    return text if len(text) <= _MAX_TEXT else text[: _MAX_TEXT - 20] + "\n... (truncated)"


def run_fixups(
    tenant: Any, *, retry_failed: bool = False, now: datetime | None = None
) -> list[FixupOutcome]:
    """Run the pending (and, with ``retry_failed``, the failed) enabled fixups in order; stop
    at the first that fails. Returns what each of them did."""
    fixups = [
        f
        for f in find_all(tenant, FIXUP_TYPE)
        if f.attributes.get("enabled", True) is not False and f.attributes.get("state") != "Applied"
    ]
    fixups.sort(key=lambda f: (int(f.attributes.get("order") or 0), f.attributes.get("name", "")))
    outcomes: list[FixupOutcome] = []
    for fixup in fixups:
        if fixup.attributes.get("state") == "Failed" and not retry_failed:
            break  # it blocks the fixups after it until it is fixed and retried
        name = str(fixup.attributes.get("name", fixup.rt_id))
        printed = io.StringIO()
        error: str | None = None
        namespace = {"wb": tenant, "__name__": "__fixup__"}
        try:
            code = compile(str(fixup.attributes.get("script") or ""), f"<fixup {name}>", "exec")
            with contextlib.redirect_stdout(printed):
                exec(code, namespace)
        except Exception as exc:
            lines = traceback.format_exception(exc)
            error = _clip("".join(lines[-3:]).strip())
        state = "Failed" if error else "Applied"
        output = _clip(printed.getvalue())
        tenant.entities.update(
            fixup.rt_id,
            {
                "state": state,
                "appliedAt": (now or datetime.now(UTC)).isoformat(),
                "output": output or None,
                "error": error,
            },
        )
        order = int(fixup.attributes.get("order") or 0)
        outcomes.append(FixupOutcome(fixup.rt_id, name, order, state, output, error))
        if error:
            break
    return outcomes
