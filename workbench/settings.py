"""The one typed settings tree (environment prefix ``WORKBENCH_``)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["Settings", "default_home"]


def default_home() -> Path:
    return Path("~/.workbench").expanduser()


class Settings(BaseSettings):
    """Platform settings; every field can be set as ``WORKBENCH_<NAME>`` in the environment."""

    model_config = SettingsConfigDict(env_prefix="WORKBENCH_", extra="ignore")

    home: Path = Field(
        default_factory=default_home,
        description="Data directory holding the system tenant and every embedded tenant backend "
        "(overridden by --data-dir).",
    )
    log_level: str = Field(default="INFO", description="Logging level of the CLI and services.")
    log_format: str = Field(
        default="text", description="'text' for people, 'json' for log collectors."
    )
    api_token: SecretStr | None = Field(
        default=None,
        description="Static bearer token the Asset Repository accepts until the Identity service "
        "issues JWTs (WORKBENCH_API_TOKEN); without it the service only starts with --no-auth.",
    )
    api_token_tenants: str = Field(
        default="*",
        description="Comma-separated tenant ids the static token may use; '*' for every tenant.",
    )
    service_host: str = Field(
        default="127.0.0.1",
        description="Interface the services bind to (loopback unless deliberately exposed).",
    )
    asset_repository_port: int = Field(
        default=5001, description="Port of the Asset Repository (GraphQL, REST bulk)."
    )
