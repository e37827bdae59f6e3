"""The Asset Repository's authorization policy: the operations a caller may do, from its token's
scopes and roles, and the operations a request needs.

Operations are scopes of the :class:`~workbench.services.auth.Principal`:

=========================  =================================================================
operation                  held by a token with
=========================  =================================================================
``assets:read``            any API scope (``workbench_api``, ``workbench_api.read_only``,
                           ``workbench_api.data_model_management``)
``assets:write``           ``workbench_api`` and the role ``Development`` (entity writes:
                           create, update, delete, runtime import)
``assets:ck-import``       ``workbench_api`` or ``workbench_api.data_model_management``, and
                           the role ``DataModelManagement``
``assets:streams-write``   ``workbench_api`` and ``StreamDataWriter`` or ``StreamDataAdmin``
=========================  =================================================================

``workbench_api.read_only`` never changes anything, whatever the roles. Routes declare the
operation they need (:func:`workbench.services.access.requires`); a GraphQL request needs the
operations of its root fields (:func:`graphql_operation_scopes`), checked on one execution path
for HTTP and WebSocket alike. Static-token and no-auth principals hold every operation.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    InlineFragmentNode,
    OperationDefinitionNode,
    OperationType,
    SelectionNode,
)

from workbench.identity.model import API_SCOPE, DATA_MODEL_SCOPE, READ_ONLY_SCOPE

__all__ = [
    "ALL_SCOPES",
    "CK_IMPORT_SCOPE",
    "ENTITY_WRITE_ROLE",
    "OPERATION_ROLES",
    "READ_SCOPE",
    "STREAM_WRITE_SCOPE",
    "WRITE_SCOPE",
    "graphql_operation_scopes",
    "how_to_get",
    "mutation_fields",
    "operation_scopes",
]

READ_SCOPE = "assets:read"
#: entity writes (GraphQL ``runtime`` mutations, REST apply/delete/import)
WRITE_SCOPE = "assets:write"
CK_IMPORT_SCOPE = "assets:ck-import"
STREAM_WRITE_SCOPE = "assets:streams-write"
ALL_SCOPES = frozenset({READ_SCOPE, WRITE_SCOPE, CK_IMPORT_SCOPE, STREAM_WRITE_SCOPE})

#: the role entity writes need
ENTITY_WRITE_ROLE = "Development"
#: operation -> the roles that grant it (any one of them)
OPERATION_ROLES: dict[str, frozenset[str]] = {
    WRITE_SCOPE: frozenset({ENTITY_WRITE_ROLE}),
    CK_IMPORT_SCOPE: frozenset({"DataModelManagement"}),
    STREAM_WRITE_SCOPE: frozenset({"StreamDataWriter", "StreamDataAdmin"}),
}


def operation_scopes(scopes: Iterable[str], roles: Iterable[str]) -> frozenset[str]:
    """The operations a token with OAuth ``scopes`` and ``roles`` may do (see the module)."""
    scopes, roles = frozenset(scopes), frozenset(roles)
    if not scopes & {API_SCOPE, READ_ONLY_SCOPE, DATA_MODEL_SCOPE}:
        return frozenset()
    out = {READ_SCOPE}
    if READ_ONLY_SCOPE in scopes:
        return frozenset(out)
    if API_SCOPE in scopes:
        if roles & OPERATION_ROLES[WRITE_SCOPE]:
            out.add(WRITE_SCOPE)
        if roles & OPERATION_ROLES[STREAM_WRITE_SCOPE]:
            out.add(STREAM_WRITE_SCOPE)
    if scopes & {API_SCOPE, DATA_MODEL_SCOPE} and roles & OPERATION_ROLES[CK_IMPORT_SCOPE]:
        out.add(CK_IMPORT_SCOPE)
    return frozenset(out)


def how_to_get(scope: str) -> str:
    """What a caller lacking ``scope`` should ask for (for error messages)."""
    roles = OPERATION_ROLES.get(scope)
    if roles is None:
        return "request a token with the workbench_api scope"
    names = " or ".join(sorted(roles))
    api = (
        "workbench_api or workbench_api.data_model_management"
        if scope == CK_IMPORT_SCOPE
        else "workbench_api"
    )
    return f"it needs the role {names} and the {api} scope; ask a tenant owner for the role"


def _root_selections(
    selections: Iterable[SelectionNode],
    fragments: Mapping[str, FragmentDefinitionNode],
    expanding: frozenset[str] = frozenset(),
) -> Iterator[FieldNode | None]:
    """The root fields, through fragment spreads and inline fragments (None: unresolvable)."""
    for selection in selections:
        if isinstance(selection, FieldNode):
            yield selection
        elif isinstance(selection, InlineFragmentNode):
            yield from _root_selections(selection.selection_set.selections, fragments, expanding)
        elif (
            isinstance(selection, FragmentSpreadNode)
            and selection.name.value in fragments
            and selection.name.value not in expanding
        ):
            name = selection.name.value
            spread = fragments[name].selection_set.selections
            yield from _root_selections(spread, fragments, expanding | {name})
        else:
            yield None


def _fragments(document: DocumentNode | None) -> dict[str, FragmentDefinitionNode]:
    if document is None:
        return {}
    return {d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)}


def mutation_fields(
    operation: OperationDefinitionNode, document: DocumentNode | None = None
) -> list[str]:
    """``runtime.demoEnergyEnergyMeters``-style paths of an operation's root fields (two levels:
    the namespace and what is done in it), for the audit trail and the scope checks; a root
    selection that cannot be resolved is ``?``."""
    fragments = _fragments(document)
    paths: list[str] = []
    for top in _root_selections(operation.selection_set.selections, fragments):
        if top is None:
            paths.append("?")
            continue
        inner = top.selection_set.selections if top.selection_set else ()
        names = [f.name.value for f in inner if isinstance(f, FieldNode)]
        paths.extend([f"{top.name.value}.{n}" for n in names] or [top.name.value])
    return paths


def graphql_operation_scopes(
    operation: OperationDefinitionNode | None, document: DocumentNode | None = None
) -> frozenset[str]:
    """The operations a GraphQL operation needs: reading always; a mutation's ``constructionKit``
    fields CK import, its ``streamData`` fields stream writes, everything else entity writes (a
    root selection that cannot be resolved needs every operation)."""
    needed = {READ_SCOPE}
    if operation is None or operation.operation is not OperationType.MUTATION:
        return frozenset(needed)
    for path in mutation_fields(operation, document):
        namespace = path.partition(".")[0]
        if namespace == "constructionKit":
            needed.add(CK_IMPORT_SCOPE)
        elif namespace == "streamData":
            needed.add(STREAM_WRITE_SCOPE)
        elif namespace == "?":
            needed |= ALL_SCOPES
        elif namespace != "__typename":
            needed.add(WRITE_SCOPE)
    return frozenset(needed)
