"""The settings of one identity provider: issuer, audience and the lifetimes of its grants."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["ProviderConfig"]


@dataclass(frozen=True)
class ProviderConfig:
    issuer: str
    audience: str = "workbench-api"
    access_token_ttl: int = 900
    refresh_token_ttl: int = 30 * 24 * 3600
    code_ttl: int = 120
    device_code_ttl: int = 600
    key_rotation_days: float = 30.0
