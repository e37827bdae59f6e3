"""Executing one bot run: token, fresh kernel, retries with backoff, history, alerts.

:class:`BotRunner` is what an executor calls for a queued :class:`RunRecord`. Each attempt
runs the artifact's notebook in a new runner process (:func:`execute_notebook`) in the run's
directory (attempt 2 and later in ``attempt-N/``); the record keeps the last attempt's status,
error, outputs and the HTML rendering.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from workbench.bots.alerts import send_alerts
from workbench.bots.execution import RunOutcome, execute_notebook, render_html
from workbench.bots.history import RunHistory, RunRecord
from workbench.bots.schedules import BotSettings
from workbench.errors import WorkbenchError
from workbench.promotion.artifacts import Artifact

if TYPE_CHECKING:
    from workbench.bots.kernel_pool import KernelPool

__all__ = ["Attempt", "BotRunner", "Credentials", "RunRequest"]

#: executes one attempt: ``execute_notebook``'s signature (an executor sends it elsewhere)
Attempt = Callable[..., RunOutcome]

log = logging.getLogger("workbench.bots.runs")


class Credentials(Protocol):
    def environment(
        self, tenant_id: str, name: str, roles: tuple[str, ...] = ()
    ) -> dict[str, str]: ...


@dataclass
class RunRequest:
    """A run to execute: the record (already saved as queued) and what it runs."""

    record: RunRecord
    artifact: Artifact
    settings: BotSettings


class BotRunner:
    """Runs a :class:`RunRequest` to its end (see the module docstring)."""

    def __init__(
        self,
        home: Path,
        history: Callable[[str], RunHistory],
        credentials: Credentials,
        *,
        smtp_url: str = "",
        mail_from: str = "bots@workbench.local",
        link: Callable[[RunRecord], str] | None = None,
        default_memory_mb: int = 0,
        pool: KernelPool | None = None,
    ) -> None:
        self.home = home
        self.history = history
        self.credentials = credentials
        self.smtp_url = smtp_url
        self.mail_from = mail_from
        self.link = link
        self.default_memory_mb = default_memory_mb
        self.pool = pool

    def run(self, request: RunRequest, execute: Attempt | None = None) -> RunRecord:
        """Run ``request`` to its end; each attempt by ``execute`` (default: on this machine,
        in a kernel of the runner's pool when it has one)."""
        record, settings = request.record, request.settings
        history = self.history(record.tenant)
        record.status = "running"
        record.started_at = time.time()
        history.save(record)
        run_dir = history.run_dir(record.bot, record.run_id)
        memory = settings.memory_mb or self.default_memory_mb or None
        parameters = {**request.artifact.parameters, **settings.parameters, **record.parameters}
        record.parameters = parameters
        for attempt in range(1, settings.retries + 2):
            record.attempts = attempt
            folder = run_dir if attempt == 1 else run_dir / f"attempt-{attempt}"
            try:
                env = self.credentials.environment(record.tenant, record.bot, settings.roles)
            except WorkbenchError as exc:
                record.status, record.error, record.reason = "failed", exc.message, "credentials"
            else:
                outcome = (execute or self._execute_here)(
                    request.artifact.notebook,
                    folder,
                    home=self.home,
                    tenant=record.tenant,
                    env=env,
                    parameters=parameters,
                    timeout=settings.timeout,
                    memory_bytes=memory * 1_000_000 if memory else None,
                )
                record.status, record.error, record.reason = (
                    outcome.status,
                    outcome.error,
                    outcome.reason,
                )
                record.outputs = outcome.outputs
                record.details = {**outcome.details, "folder": folder.name}
                record.artifacts = (
                    sorted(p.name for p in (folder / "artifacts").glob("*") if p.is_file())
                    if (folder / "artifacts").is_dir()
                    else []
                )
                try:
                    render_html(folder)
                except Exception as exc:  # a rendering problem must not hide the run's result
                    log.warning("could not render run %s: %s", record.run_id, exc)
            if (
                record.status == "succeeded"
                or record.reason == "service-stopped"  # not the notebook's fault: no retry
                or attempt > settings.retries
            ):
                break
            record.details["previous"] = record.status
            record.status = "retrying"  # not final: waiters wait for the last attempt
            history.save(record)
            time.sleep(settings.retry_backoff * 2 ** (attempt - 1))
        record.finished_at = time.time()
        history.save(record)
        log.info(
            "bot run %s of %s/%s: %s",
            record.run_id,
            record.tenant,
            record.bot,
            record.status,
            extra={"tenant": record.tenant, "bot": record.bot, "status": record.status},
        )
        self._alert(record, settings)
        return record

    def _execute_here(self, *args: Any, **kwargs: Any) -> RunOutcome:
        return execute_notebook(*args, pool=self.pool, **kwargs)

    def _alert(self, record: RunRecord, settings: BotSettings) -> None:
        outcome = "success" if record.status == "succeeded" else "failure"
        if outcome not in settings.alert_on:
            return
        if not settings.alert_webhooks and not settings.alert_emails:
            return
        problems = send_alerts(
            record.to_dict(),
            webhooks=list(settings.alert_webhooks),
            emails=list(settings.alert_emails),
            smtp_url=self.smtp_url,
            sender=self.mail_from,
            link=self.link(record) if self.link else None,
        )
        if problems:
            record.details["alertProblems"] = problems
            self.history(record.tenant).save(record)


def run_summary(record: RunRecord) -> dict[str, Any]:
    return record.to_dict()
