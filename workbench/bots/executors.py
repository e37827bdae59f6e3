"""The registry of bot executors: ``WORKBENCH_BOT_EXECUTOR`` names one (see
:mod:`workbench.bots.executor` for the port)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from workbench.bots.executor import Executor, LocalPoolExecutor
from workbench.errors import ValidationError

if TYPE_CHECKING:
    from workbench.bots.runs import BotRunner
    from workbench.bots.settings import BotServiceSettings

__all__ = ["EXECUTORS", "executor_from_settings"]


#: executor names (``WORKBENCH_BOT_EXECUTOR``) and what to install for them
EXECUTORS = {"local": "", "celery": "pip install 'mesh-workbench[bots]'"}


def executor_from_settings(
    runner: BotRunner, settings: BotServiceSettings, bus_url: str = ""
) -> Executor:
    """The executor ``settings.executor`` names, built for ``runner``."""
    if settings.executor == "local":
        return LocalPoolExecutor(runner, settings.workers)
    if settings.executor == "celery":
        try:
            from workbench.bots.celery_executor import CeleryExecutor
        except ImportError:
            raise ValidationError(
                f"WORKBENCH_BOT_EXECUTOR=celery needs Celery: {EXECUTORS['celery']}"
            ) from None
        return CeleryExecutor(
            runner,
            settings.broker(bus_url),
            queue=settings.queue,
            workers=settings.workers,
            worker_wait_s=settings.worker_wait_s,
        )
    raise ValidationError(
        f"bot executor {settings.executor!r} is unknown: set WORKBENCH_BOT_EXECUTOR to "
        + " or ".join(EXECUTORS)
    )
