"""The exact path of :func:`~workbench.runtime.values.normalize_attributes`: validation that
collects every problem, and the attribute lookups by name, GraphQL name, casing or id.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from workbench.ck.model import CkModel, TypeAttribute, ValueType
from workbench.ck.naming import graphql_field_name
from workbench.errors import ErrorCollector
from workbench.runtime.scalars import (
    _ARRAY_TYPES,
    RECORD_ID_KEY,
    _Invalid,
    _record_chain,
    _record_of,
    _show,
    _to_scalar,
)

__all__ = ["find_attribute"]


_MISSING = object()


@dataclass
class _Normalizer:
    model: CkModel
    owner: str
    location: str | None
    errors: ErrorCollector

    def fail(self, path: str, reason: str) -> None:
        self.errors.add(f"attribute '{path}' of {self.owner} {reason}", self.location, path)

    def members(
        self,
        container: str,
        attributes: Mapping[str, TypeAttribute],
        values: Any,
        *,
        keyed_by: Literal["name", "id"],
        partial: bool,
        prefix: str,
    ) -> dict[str, Any]:
        """Validate the attribute values of a type or record; ``prefix`` is the path so far."""
        out: dict[str, Any] = {}
        seen: dict[str, str] = {}
        field_names = _lookup(attributes).field_names
        for key, raw in self.entries(container, values, keyed_by, prefix):
            attribute = _match(attributes, key, keyed_by)
            if attribute is None:
                self.unknown(container, attributes, key, keyed_by, prefix)
                continue
            path = prefix + field_names[attribute.name]
            if attribute.name in seen:
                self.fail(path, f"is given twice (as {seen[attribute.name]!r} and {key!r})")
                continue
            seen[attribute.name] = key
            if raw is None:
                if not attribute.is_optional:
                    self.fail(path, "is required and cannot be null")
                continue
            value = self.value(attribute, raw, path)
            if value is not _MISSING:
                out[attribute.name] = value
        if partial:
            return out
        for attribute in attributes.values():
            if attribute.name in seen:
                continue
            path = prefix + field_names[attribute.name]
            defaults = attribute.defaults
            if defaults:
                raw_default = defaults if attribute.value_type in _ARRAY_TYPES else defaults[0]
                value = self.value(attribute, raw_default, path)
                if value is not _MISSING:
                    out[attribute.name] = value
            elif not attribute.is_optional:
                self.fail(path, "is required but missing")
        return out

    def entries(
        self, container: str, values: Any, keyed_by: Literal["name", "id"], prefix: str
    ) -> list[tuple[str, Any]]:
        if isinstance(values, Mapping):
            entries = []
            for key, raw in values.items():
                if not isinstance(key, str):
                    self.errors.add(
                        f"attribute keys of {container} must be strings, got {key!r}",
                        self.location,
                        prefix.rstrip(".") or None,
                    )
                    continue
                entries.append((key, raw))
            return entries
        if keyed_by == "id" and isinstance(values, list | tuple):
            entries = []
            for index, item in enumerate(values):
                if (
                    not isinstance(item, Mapping)
                    or not isinstance(item.get("id"), str)
                    or set(item) - {"id", "value"}
                ):
                    self.errors.add(
                        f"attribute entry {index} of {container} must be {{id, value}} with a "
                        f"full attribute id such as 'Lib/Attribute', got {_show(item)}",
                        self.location,
                        prefix.rstrip(".") or None,
                    )
                    continue
                entries.append((item["id"], item.get("value")))
            return entries
        expected = "a mapping or a list of {id, value}" if keyed_by == "id" else "a mapping"
        self.errors.add(
            f"attributes of {container} must be {expected}, got {_show(values)}",
            self.location,
            prefix.rstrip(".") or None,
        )
        return []

    def unknown(
        self,
        container: str,
        attributes: Mapping[str, TypeAttribute],
        key: str,
        keyed_by: Literal["name", "id"],
        prefix: str,
    ) -> None:
        where = f" (at '{prefix.rstrip('.')}')" if prefix else ""
        if keyed_by == "id":
            known = ", ".join(sorted(a.attribute_id for a in attributes.values())) or "none"
            message = (
                f"{container}{where} has no attribute with id {key!r}; its attribute ids are: "
                f"{known}"
            )
        else:
            known = ", ".join(sorted(graphql_field_name(name) for name in attributes)) or "none"
            message = f"{container}{where} has no attribute {key!r}; its attributes are: {known}"
        self.errors.add(message, self.location, prefix + key)

    def value(self, attribute: TypeAttribute, raw: Any, path: str) -> Any:
        """The storage form of one attribute value, or ``_MISSING`` after recording errors."""
        try:
            if attribute.value_type is ValueType.RECORD:
                return self.record(attribute, raw, path)
            if attribute.value_type is ValueType.RECORD_ARRAY:
                if not isinstance(raw, list | tuple):
                    raise _Invalid(f"expects a list of records, got {_show(raw)}")
                items = [
                    self.element(attribute, item, f"{path}[{i}]") for i, item in enumerate(raw)
                ]
                return _MISSING if any(item is _MISSING for item in items) else items
            return _to_scalar(self.model, attribute, raw, lenient=False)
        except _Invalid as exc:
            self.fail(path, exc.reason)
            return _MISSING

    def element(self, attribute: TypeAttribute, raw: Any, path: str) -> Any:
        """One record of a RecordArray, or ``_MISSING`` after recording its errors."""
        try:
            return self.record(attribute, raw, path)
        except _Invalid as exc:
            self.fail(path, exc.reason)
            return _MISSING

    def record(self, attribute: TypeAttribute, raw: Any, path: str) -> Any:
        declared = _record_of(self.model, attribute)
        if not isinstance(raw, Mapping):
            raise _Invalid(f"expects a record {declared.id} (a mapping), got {_show(raw)}")
        record = declared
        given_id = raw.get(RECORD_ID_KEY)
        if given_id is not None and given_id != declared.id:
            found = self.model.records.get(given_id) if isinstance(given_id, str) else None
            if found is None or declared.id not in _record_chain(self.model, found):
                raise _Invalid(
                    f"expects a record {declared.id} or one derived from it, got ckRecordId "
                    f"{given_id!r}"
                )
            record = found
        body: Any
        keyed_by: Literal["name", "id"]
        if isinstance(raw.get("attributes"), list):
            body, keyed_by = raw["attributes"], "id"
            extra = set(raw) - {RECORD_ID_KEY, "attributes"}
            if extra:
                raise _Invalid(
                    f"has unexpected keys {sorted(extra)} next to ckRecordId and attributes"
                )
        else:
            body = {k: v for k, v in raw.items() if k != RECORD_ID_KEY}
            keyed_by = "name"
        before = len(self.errors.details)
        out = self.members(
            f"record {record.id}",
            record.attributes,
            body,
            keyed_by=keyed_by,
            partial=False,
            prefix=path + ".",
        )
        if len(self.errors.details) > before:
            return _MISSING
        if record.id != declared.id:
            out[RECORD_ID_KEY] = record.id
        return out


class _Lookup:
    """Name and id lookups over one (immutable, resolved) attribute mapping."""

    __slots__ = ("by_id", "by_lower", "field_names", "source")

    def __init__(self, attributes: Mapping[str, TypeAttribute]) -> None:
        self.source = attributes  # keeps the mapping alive, so its id() stays unique
        self.by_id = {a.attribute_id: a for a in attributes.values()}
        self.by_lower = {name.lower(): a for name, a in attributes.items()}
        self.field_names = {name: graphql_field_name(name) for name in attributes}


_LOOKUPS: dict[int, _Lookup] = {}


def _lookup(attributes: Mapping[str, TypeAttribute]) -> _Lookup:
    # resolved models never change their attribute mappings, so one lookup per mapping suffices
    found = _LOOKUPS.get(id(attributes))
    if found is None or found.source is not attributes:
        if len(_LOOKUPS) > 4096:
            _LOOKUPS.clear()
        found = _LOOKUPS[id(attributes)] = _Lookup(attributes)
    return found


def _match(
    attributes: Mapping[str, TypeAttribute], key: str, keyed_by: Literal["name", "id"]
) -> TypeAttribute | None:
    lookup = _lookup(attributes)
    if keyed_by == "id":
        return lookup.by_id.get(key)
    return attributes.get(key) or lookup.by_lower.get(key.lower())


def find_attribute(attributes: Mapping[str, TypeAttribute], name: str) -> TypeAttribute | None:
    """The attribute called ``name``: the declared name, its GraphQL form or any casing."""
    return attributes.get(name) or _lookup(attributes).by_lower.get(name.lower())
