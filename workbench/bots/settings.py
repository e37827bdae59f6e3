"""Settings of the Bot Service (``WORKBENCH_BOT_*`` in the environment)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from workbench.errors import ValidationError

__all__ = ["BotServiceSettings"]


class BotServiceSettings(BaseSettings):
    """Every field can be set as ``WORKBENCH_BOT_<NAME>``."""

    model_config = SettingsConfigDict(env_prefix="WORKBENCH_BOT_", extra="ignore")

    port: int = Field(default=5009, description="Port of the Bot Service.")
    api_url: str = Field(
        default="",
        description="Asset Repository URL the bots' kernels use (default: "
        "http://<service_host>:<asset_repository_port> when Identity issues bot tokens; empty "
        "with --in-process: kernels open the data directory themselves).",
    )
    tenant_concurrency: int = Field(
        default=2, description="Runs of one tenant's bots at the same time (more wait)."
    )
    workers: int = Field(default=4, description="Runs of all tenants at the same time.")
    tick_s: float = Field(default=0.2, description="How often the scheduler looks for due runs.")
    retention_days: float = Field(
        default=30.0, description="Run history older than this is removed (0: keep forever)."
    )
    retention_runs: int = Field(
        default=200, description="At most this many runs are kept per bot (0: no limit)."
    )
    smtp_url: str = Field(
        default="", description="SMTP server for e-mail alerts, e.g. smtp://127.0.0.1:25."
    )
    mail_from: str = Field(
        default="bots@workbench.local", description="Sender address of e-mail alerts."
    )
    memory_mb: int = Field(
        default=0, description="Default memory limit of a run's kernel in MB (0: none)."
    )
    executor: str = Field(
        default="local",
        description="Where runs execute: 'local' (processes of the Bot Service's machine) or "
        "'celery' (bot workers, `workbench serve bot-worker`, on the RabbitMQ of broker_url).",
    )
    broker_url: str = Field(
        default="",
        description="RabbitMQ of the bot workers, amqp://USER:PASS@HOST:PORT/VHOST (default: "
        "WORKBENCH_BUS_URL when that is an amqp:// URL).",
    )
    queue: str = Field(
        default="workbench.bots", description="The Celery queue bot runs are sent to."
    )
    worker_concurrency: int = Field(
        default=2, description="Runs one bot worker executes at the same time."
    )
    worker_wait_s: float = Field(
        default=600.0,
        description="How long a run waits for a bot worker to take it before it fails "
        "(reason no-worker).",
    )
    pool_size: int = Field(
        default=1,
        description="Pre-started kernels kept per tenant (a kernel serves one run and is "
        "replaced after it; 0: every run starts its kernel).",
    )

    def broker(self, bus_url: str = "") -> str:
        """The broker URL of the bot workers (``broker_url``, else an amqp:// bus URL)."""
        url = self.broker_url or (bus_url if bus_url.startswith(("amqp://", "amqps://")) else "")
        if not url:
            raise ValidationError(
                "bot workers need a RabbitMQ: set WORKBENCH_BOT_BROKER_URL (or --broker-url) "
                "to amqp://USER:PASS@HOST:PORT/, or WORKBENCH_BUS_URL to an amqp:// URL"
            )
        return url
