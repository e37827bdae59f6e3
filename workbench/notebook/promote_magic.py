"""``%promote`` in a tenant kernel: promote the notebook being edited (as saved on disk).

``%promote --kind bot|ck|graphql|adapter [--name N] [--every 1h | --cron EXPR [--timezone TZ] |
--on-event TYPE[:KINDS] [--event-filter FIELD=VALUE ...]] [--no-run] [PATH]``.
PATH defaults to the notebook of this kernel's session (``JPY_SESSION_NAME``, set by Jupyter
Server). A remote ``wb`` promotes through the Bot Service (the ``bot_service_url`` setting,
``WORKBENCH_BOT_SERVICE_URL``) with the kernel's token (``api_token``), so the author is
whoever the token names; an in-process ``wb`` promotes on the data directory as the kernel's
user. ``register`` also gives ``wb`` a ``bot`` attribute
(:mod:`workbench.bots.context`) so bot notebooks run unchanged outside a run.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from IPython.core.error import UsageError
from IPython.core.magic import Magics, magics_class

from workbench.errors import WorkbenchError
from workbench.notebook.magics import argument, line_magic, parse_argstring, with_arguments

__all__ = ["PromoteMagics", "register"]


@magics_class
class PromoteMagics(Magics):
    """``%promote``, working on the connection of the workbench magics."""

    def __init__(self, shell: Any, workbench_magics: Any) -> None:
        super().__init__(shell)
        self.workbench_magics = workbench_magics

    @with_arguments()
    @argument("path", nargs="?", help="The notebook (default: this kernel's notebook).")
    @argument("--kind", required=True, choices=["ck", "bot", "graphql", "adapter"])
    @argument("--name", help="Promotion name (default: from the file name).")
    @argument("--every", help="bot: interval (30s, 5m, 1h).")
    @argument("--cron", help="bot: cron expression.")
    @argument("--timezone", help="bot: time zone of --cron.")
    @argument("--timeout", help="bot/graphql: time limit.")
    @argument("--on-event", help="bot: run on entity events: TYPE[:INSERT,UPDATE,DELETE].")
    @argument(
        "--event-filter",
        action="append",
        help="bot: with --on-event, only entities whose FIELD has VALUE (FIELD=VALUE, repeatable).",
    )
    @argument("--no-run", action="store_true", help="bot: skip the validation run.")
    @line_magic("promote")
    def promote(self, line: str) -> dict[str, Any]:
        """Promote this notebook (as last saved) for its kind; returns the new version."""
        args = parse_argstring(self.promote, line)
        # Jupyter Server's variable (not a workbench setting): the notebook of this session
        path = Path(args.path or os.environ.get("JPY_SESSION_NAME") or "")
        if not path.name or not path.is_file():
            raise UsageError(
                "%promote needs the notebook's path: save the notebook and run "
                "'%promote --kind K path/to/notebook.ipynb'"
            )
        names = ("every", "cron", "timezone", "timeout", "on_event", "event_filter")
        options: dict[str, Any] = {k: getattr(args, k) for k in names}
        if args.no_run:
            options["no_run"] = True
        connection = self.workbench_magics._require()
        from workbench.promotion.service import default_name

        name = args.name or default_name(path)
        try:
            if connection.mode == "remote":
                result = _promote_remote(connection, path, args.kind, name, options)
            else:
                from workbench.promotion.service import Promotions

                result = (
                    Promotions(connection.workbench)
                    .promote(
                        connection.tenant,
                        path,
                        kind=args.kind,
                        name=name,
                        author=connection.user,
                        options=options,
                        validation_run=not args.no_run,
                    )
                    .to_dict()
                )
        except WorkbenchError as exc:
            from workbench.notebook.magics import _refused

            raise _refused(exc) from None
        print(f"promoted {result['ref']} ({result['kind']}) into tenant {connection.tenant}")
        return result


def _promote_remote(
    connection: Any, path: Path, kind: str, name: str, options: dict[str, Any]
) -> dict[str, Any]:
    import httpx

    from workbench.errors import BackendUnavailable
    from workbench.settings import current_settings

    settings = current_settings()
    url = settings.bot_service_url.rstrip("/")
    if not url:
        raise BackendUnavailable(
            "%promote of a remote tenant goes through the Bot Service: set "
            "WORKBENCH_BOT_SERVICE_URL (the hub's spawner does) and run it again"
        )
    token = settings.api_token.get_secret_value() if settings.api_token else ""
    body = {
        "notebook": json.loads(path.read_text(encoding="utf-8")),
        "kind": kind,
        "name": name,
        "options": {k: v for k, v in options.items() if v},
    }
    response = httpx.post(
        f"{url}/tenants/{connection.tenant}/promotions",
        json=body,
        headers={"Authorization": f"Bearer {token}"},
        timeout=600,
    )
    if response.status_code >= 400:
        try:
            message = response.json()["error"]["message"]
        except (ValueError, KeyError, TypeError):
            message = response.text[:500]
        raise WorkbenchError(f"the Bot Service refused the promotion: {message}")
    data: dict[str, Any] = response.json()
    return data


def register(shell: Any, workbench_magics: Any) -> None:
    """Add ``%promote`` and ``wb.bot`` (call after ``wb`` is bound)."""
    shell.register_magics(PromoteMagics(shell, workbench_magics))
    from workbench.bots.context import attach

    attach(shell.user_ns)
