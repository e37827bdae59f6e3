"""What each kind of promotion checks and does: ``ck``, ``bot``, ``graphql``, ``adapter``.

A :class:`~workbench.promotion.promotion_kind.PromotionKind` validates a notebook for its kind
(returning the details kept in the artifact) and deploys an artifact (``ck``: import the
libraries; ``bot`` and ``graphql``: the deployment pointer is what the Bot Service and the schema
builder read, nothing more to do; ``adapter``: :mod:`workbench.promotion.adapter_kind`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from workbench.errors import Conflict, ErrorDetail, ModelError, ValidationError, WorkbenchError
from workbench.promotion.adapter_kind import AdapterKind
from workbench.promotion.notebooks import Notebook, cell_magic_cells
from workbench.promotion.promotion_kind import PromotionKind

if TYPE_CHECKING:
    from workbench.client.local import Tenant
    from workbench.promotion.artifacts import Artifact

__all__ = ["KIND_HANDLERS", "PromotionKind", "kind_handler"]


class CkKind(PromotionKind):
    """The notebook's ``%%ck`` cells are the library; deploying imports it (migrations run)."""

    name = "ck"

    def libraries(self, notebook: Notebook) -> list[Any]:
        from workbench.ck import load_library_from_text

        cells = cell_magic_cells(notebook, "ck")
        if not cells:
            raise ValidationError(
                "a ck promotion needs %%ck cells (each holds one compiled CK library in YAML); "
                "this notebook has none"
            )
        problems = []
        by_name: dict[str, Any] = {}
        for index, _line, body in cells:
            try:
                library = load_library_from_text(body, f"<%%ck cell {index}>")
            except WorkbenchError as exc:
                problems.append(ErrorDetail(exc.message, f"cell {index}"))
                continue
            # the notebook's last cell for a library is its final state
            by_name.pop(library.name, None)
            by_name[library.name] = library
        if problems:
            raise ModelError("the notebook's %%ck cells do not form valid libraries", problems)
        return list(by_name.values())

    def validate(
        self, tenant: Tenant, notebook: Notebook, options: Mapping[str, Any]
    ) -> dict[str, Any]:
        libraries = self.libraries(notebook)
        problems = []
        for library in libraries:
            _check_forward(tenant, library, "the notebook")
            try:
                tenant.ck.validate(library)
            except WorkbenchError as exc:
                problems.append(ErrorDetail(str(exc), library.model_id))
        if problems:
            raise ModelError(
                f"the notebook's libraries do not validate against tenant {tenant.id!r}", problems
            )
        return {"libraries": [lib.model_id for lib in libraries]}

    def deploy(self, tenant: Tenant, artifact: Artifact) -> dict[str, Any]:
        from workbench.promotion.notebooks import Notebook

        notebook = Notebook(artifact.notebook, artifact.content_hash)
        reports = []
        for library in self.libraries(notebook):
            _check_forward(tenant, library, artifact.ref)
            reports.append(tenant.ck.import_library(library).to_dict())
        return {"imports": reports}


def _check_forward(tenant: Tenant, library: Any, what: str) -> None:
    previous = tenant.ck.own_libraries().get(library.name)
    if previous is not None and previous.version > library.version:
        raise Conflict(
            f"tenant {tenant.id!r} has {previous.model_id}; {what} holds the older "
            f"{library.model_id} and CK libraries cannot be downgraded (migrations run forward "
            "only): promote a new version of the library instead"
        )


class BotKind(PromotionKind):
    """A notebook run on a schedule by the Bot Service; validated by running it once."""

    name = "bot"

    def validate(
        self, tenant: Tenant, notebook: Notebook, options: Mapping[str, Any]
    ) -> dict[str, Any]:
        from workbench.bots.schedules import BotSettings

        settings = BotSettings.from_options(notebook.content, options)
        return {"bot": settings.to_dict()}


class GraphqlKind(PromotionKind):
    """Typed functions of the notebook become fields under ``extensions`` of the schema."""

    name = "graphql"

    def validate(
        self, tenant: Tenant, notebook: Notebook, options: Mapping[str, Any]
    ) -> dict[str, Any]:
        from workbench.promotion.graphql_functions import describe_functions

        functions = describe_functions(notebook, tenant, options)
        return {
            "functions": functions,
            "timeout": float(options.get("timeout") or 10.0),
        }


KIND_HANDLERS: dict[str, PromotionKind] = {
    k.name: k for k in (CkKind(), BotKind(), GraphqlKind(), AdapterKind())
}


def kind_handler(kind: str) -> PromotionKind:
    try:
        return KIND_HANDLERS[kind]
    except KeyError:
        raise ValidationError(
            f"unknown promotion kind {kind!r}; use one of {', '.join(KIND_HANDLERS)}"
        ) from None
