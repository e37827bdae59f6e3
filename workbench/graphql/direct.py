"""List items completed straight from stored entities, for selections of plain leaves.

A page of ``rt<Type>(...) { items { rtId name serialNumber state } }`` normally goes stored
entity → resolver source dict (every attribute converted, :mod:`.sources`) → the executor's leaf
reader (every selected field checked and output-coerced, :mod:`.executor`). When ``items`` selects
only leaf fields without arguments or directives, of an object type (not an interface), whose
values need no resolver and no conversion beyond an enum key's name, both steps are one generated
function per type and selection: it reads just the selected attributes of each stored entity and
checks them as the leaf reader does (:mod:`.leaves`). The list goes back to the executor as
:class:`DirectItems`, which it keeps as it is.

Results and errors stay graphql-core's: when any item's value does not pass the check (a null in
a non-null field, a value its type does not coerce, another CK type than expected), the page
takes the normal path, which reports the error as usual. Only the executors of this package
(:class:`~.executor.FastExecutor`, which set :data:`DIRECT_COMPLETION` while they execute) accept
such lists; under any other executor the resolvers build ordinary sources.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any, Protocol

from graphql import (
    FieldNode,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    is_leaf_type,
)

from workbench.graphql.leaves import leaf_check_lines, leaf_namespace

if TYPE_CHECKING:
    from workbench.graphql.context import Info
    from workbench.storage.base import StoredEntity

__all__ = ["DIRECT_COMPLETION", "DirectItems", "Selections", "direct_items"]

#: set by the executors that keep :class:`DirectItems` as they are (while they execute)
DIRECT_COMPLETION: ContextVar[bool] = ContextVar("workbench_graphql_direct", default=False)

#: system fields: the stored entity's attribute each is read from
_SYSTEM = {
    "rtId": "rt_id",
    "ckTypeId": "ck_type_id",
    "rtWellKnownName": "rt_well_known_name",
    "rtVersion": "rt_version",
    "rtCreationDateTime": "rt_creation_datetime",
    "rtChangedDateTime": "rt_changed_datetime",
}
#: selections analysed, by the ``items`` field node (kept: its id identifies it)
_MAX_KEPT = 1024

Convert = Callable[["StoredEntity"], "dict[str, Any] | None"]


class DirectItems(list[dict[str, Any]]):
    """List items already completed (response names, output values): the executor keeps them."""

    __slots__ = ()


class Selections:
    """A schema's analyses of ``items`` field nodes: the compiled function, or None (normal
    path); kept by its :class:`~.sources.SourceFactory`."""

    def __init__(self) -> None:
        self.by_node: dict[tuple[int, str], tuple[FieldNode, Convert | None]] = {}
        self.compiled: dict[tuple[str, tuple[tuple[str, str], ...]], Convert | None] = {}
        self.lock = threading.Lock()


class SourceFactory(Protocol):
    """What this module needs of :class:`~.sources.SourceFactory` (which imports this one)."""

    direct_selections: Selections

    def direct_plan(self, type_id: str) -> dict[str, tuple[str, dict[Any, str] | None]] | None:
        """By field name: the attribute's name and its enum key names (None: as is)."""


def _selections(factory: SourceFactory) -> Selections:
    kept: Selections = factory.direct_selections
    return kept


def _items_node(info: Info) -> FieldNode | None:
    """The one ``items`` field node of the connection, when the connection's selection is plain
    fields (no fragments, no directives on ``items``) and selects no ``edges``."""
    if len(info.field_nodes) != 1:
        return None
    selection_set = info.field_nodes[0].selection_set
    if selection_set is None:
        return None
    found: FieldNode | None = None
    for selection in selection_set.selections:
        if not isinstance(selection, FieldNode):
            return None
        name = selection.name.value
        if name == "edges":
            return None
        if name == "items":
            if found is not None or selection.directives:
                return None
            found = selection
    return found


def _item_type(info: Info) -> GraphQLObjectType | None:
    connection = info.return_type
    if isinstance(connection, GraphQLNonNull):
        connection = connection.of_type
    if not isinstance(connection, GraphQLObjectType):
        return None
    field = connection.fields.get("items")
    if field is None:
        return None
    item = field.type
    if isinstance(item, GraphQLNonNull):
        item = item.of_type
    if not isinstance(item, GraphQLList):
        return None
    item = item.of_type
    if isinstance(item, GraphQLNonNull):
        item = item.of_type
    if isinstance(item, GraphQLObjectType) and item.is_type_of is None:
        return item
    return None


def _signature(node: FieldNode) -> tuple[tuple[str, str], ...] | None:
    """(response name, field name) of each selected field, or None when one is not a plain
    field (arguments, directives, a sub-selection, a fragment) or a response name repeats."""
    if node.selection_set is None:
        return None
    out: list[tuple[str, str]] = []
    seen: set[str] = set()
    for selection in node.selection_set.selections:
        if (
            not isinstance(selection, FieldNode)
            or selection.arguments
            or selection.directives
            or selection.selection_set is not None
        ):
            return None
        response = selection.alias.value if selection.alias else selection.name.value
        if response in seen:
            return None
        seen.add(response)
        out.append((response, selection.name.value))
    return tuple(out)


def _compile(
    factory: SourceFactory,
    type_id: str,
    object_type: GraphQLObjectType,
    signature: tuple[tuple[str, str], ...],
) -> Convert | None:
    """``convert(stored) -> dict | None`` for ``signature`` on ``type_id``, or None when a field
    needs more than a read (a resolver, a record, a conversion of the runtime)."""
    plan = factory.direct_plan(type_id)
    if plan is None:
        return None
    namespace = leaf_namespace(object_type.name)
    namespace["_type_id"] = type_id
    lines = [
        "def convert(stored):",
        "    if stored.ck_type_id != _type_id:",
        "        return None",
        "    get = stored.attributes.get",
    ]
    items: list[str] = []
    for index, (response, field_name) in enumerate(signature):
        if field_name == "__typename":
            items.append(f"{response!r}: _typename")
            continue
        field = object_type.fields.get(field_name)
        if field is None or field.resolve is not None:
            return None
        non_null = isinstance(field.type, GraphQLNonNull)
        leaf = field.type.of_type if isinstance(field.type, GraphQLNonNull) else field.type
        if not is_leaf_type(leaf):
            return None
        var = f"v{index}"
        if field_name in _SYSTEM:
            lines.append(f"    {var} = stored.{_SYSTEM[field_name]}")
        elif field_name in plan:
            name, enum_names = plan[field_name]
            lines.append(f"    {var} = get({name!r})")
            if enum_names is not None:
                namespace[f"_keys{index}"] = enum_names
                lines.append(f"    {var} = _keys{index}.get({var}, {var})")
        else:
            return None
        lines += leaf_check_lines(index, leaf, non_null, namespace)
        items.append(f"{response!r}: {var}")
    lines.append("    return {" + ", ".join(items) + "}")
    exec("\n".join(lines), namespace)  # generated from GraphQL and CK names (repr) only
    convert: Convert = namespace["convert"]
    return convert


def _converter(info: Info, factory: SourceFactory, type_id: str) -> Convert | None:
    node = _items_node(info)
    if node is None:
        return None
    kept = _selections(factory)
    known = kept.by_node.get((id(node), type_id))
    if known is not None and known[0] is node:
        return known[1]
    convert: Convert | None = None
    object_type = _item_type(info)
    signature = _signature(node) if object_type is not None else None
    if object_type is not None and signature is not None:
        key = (type_id, signature)
        with kept.lock:
            known_compiled = key in kept.compiled
            convert = kept.compiled.get(key)
        if not known_compiled:
            convert = _compile(factory, type_id, object_type, signature)
            with kept.lock:
                if len(kept.compiled) >= _MAX_KEPT:
                    kept.compiled.clear()
                kept.compiled[key] = convert
    with kept.lock:
        if len(kept.by_node) >= _MAX_KEPT:
            kept.by_node.clear()
        kept.by_node[(id(node), type_id)] = (node, convert)
    return convert


def direct_items(
    info: Info, factory: SourceFactory, type_id: str, stored: Sequence[StoredEntity]
) -> DirectItems | None:
    """The page's items completed for the selection of ``items``, or None: build sources (the
    selection needs more than plain reads, an item does not pass, or the executor would not
    keep them)."""
    if not DIRECT_COMPLETION.get():
        return None
    convert = _converter(info, factory, type_id)
    if convert is None:
        return None
    out = DirectItems()
    append = out.append
    for item in stored:
        completed = convert(item)
        if completed is None:
            return None
        append(completed)
    return out
