"""The one typed settings tree (environment prefix ``WORKBENCH_``)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
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
