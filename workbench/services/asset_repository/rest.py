"""REST endpoints under ``/tenants/{tenantId}/``: CK libraries, runtime files, entities, streams.

GraphQL is for applications; these move whole files (:mod:`.files_rest`),
carry the remote SDK's entity calls (:mod:`.entities_rest`) and stream data
(:mod:`.streams_rest`). This module mounts them under one prefix.
"""

from __future__ import annotations

from fastapi import APIRouter

from workbench.services.asset_repository.entities_rest import entity_json
from workbench.services.asset_repository.entities_rest import router as entities_router
from workbench.services.asset_repository.files_rest import router as files_router
from workbench.services.asset_repository.streams_rest import router as streams_router

__all__ = ["entity_json", "router"]

router = APIRouter()
router.include_router(streams_router, prefix="/tenants/{tenantId}")
# these two carry the prefix themselves: FastAPI includes routers lazily, and a request's
# route (the metrics' and the audit's route template) is the route as its own router defined it
router.include_router(files_router)
router.include_router(entities_router)
