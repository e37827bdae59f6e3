"""Tenant ids: ``^[a-z][a-z0-9-]{1,62}$``; ``system`` is reserved for the platform."""

from __future__ import annotations

import re

from workbench.errors import ValidationError

__all__ = ["SYSTEM_TENANT", "TENANT_ID_PATTERN", "validate_tenant_id"]

SYSTEM_TENANT = "system"
TENANT_ID_PATTERN = re.compile(r"^[a-z][a-z0-9-]{1,62}$")


def validate_tenant_id(tenant_id: str, *, allow_system: bool = False) -> str:
    """Return ``tenant_id`` when valid, else raise ValidationError saying what a valid id is."""
    if not isinstance(tenant_id, str) or not TENANT_ID_PATTERN.fullmatch(tenant_id):
        raise ValidationError(
            f"tenant id {tenant_id!r} is invalid: use 2-63 characters, a lower-case letter first, "
            "then lower-case letters, digits or '-' (for example 'plant-linz')"
        )
    if tenant_id == SYSTEM_TENANT and not allow_system:
        raise ValidationError(
            f"tenant id {SYSTEM_TENANT!r} is reserved for the platform; choose another id"
        )
    return tenant_id
