"""The base of the promotion kinds (:mod:`workbench.promotion.kinds` lists them)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from workbench.promotion.notebooks import Notebook

if TYPE_CHECKING:
    from workbench.client.local import Tenant
    from workbench.promotion.artifacts import Artifact

__all__ = ["PromotionKind"]


class PromotionKind:
    """Base of the kinds: override :meth:`validate`, and :meth:`deploy` where deploying works."""

    name = "kind"

    def validate(
        self, tenant: Tenant, notebook: Notebook, options: Mapping[str, Any]
    ) -> dict[str, Any]:
        """Check ``notebook`` for this kind; return what the artifact keeps about it."""
        return {}

    def deploy(self, tenant: Tenant, artifact: Artifact) -> dict[str, Any]:
        """Make ``artifact`` live (before the pointer switches to it); return a report."""
        return {}

    def retire(self, tenant: Tenant, artifact: Artifact) -> dict[str, Any]:
        """Take the deployed ``artifact`` out of service (processes it runs); a report."""
        return {}

    def status(self, tenant: Tenant, artifact: Artifact) -> dict[str, Any]:
        """What runs for the deployed ``artifact`` now (``promotions show``); empty: nothing."""
        return {}
