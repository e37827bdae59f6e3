"""Parsing the ``indexes`` of a type entry.

An index has ``indexType`` (Ascending, Text, Unique, UniqueNotDeleted) and ``fields``, each a
mapping with ``attributePaths``. Text indexes may name a stemming ``language`` and fields a
relevance ``weight`` (a positive number); both are kept in the library and exported again.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from workbench.ck.element_checks import EntryChecks, KeySpec
from workbench.ck.model import CkIndex, IndexType

__all__ = ["IndexParser"]

_INDEX_KEYS: KeySpec = ({"indexType", "fields"}, {"language", "description"})
_INDEX_FIELD_KEYS: KeySpec = ({"attributePaths"}, {"weight"})


class IndexParser(EntryChecks):
    """Turns a type entry's ``indexes`` list into :class:`CkIndex` objects."""

    def _indexes(self, entry: Mapping[str, Any], where: str, element: str) -> list[CkIndex]:
        indexes = []
        form = "{indexType, fields}"
        for what, item in self._mappings(
            entry, "indexes", where, element, "index", form, _INDEX_KEYS
        ):
            try:
                index_type = IndexType(str(item.get("indexType")))
            except ValueError:
                self.findings.add(
                    f"{what} indexType {item.get('indexType')!r} is not valid; use one of: "
                    f"{' | '.join(t.value for t in IndexType)}",
                    where,
                    element,
                )
                continue
            language = self._text(item, "language", where, element)
            if language is not None and index_type is not IndexType.TEXT:
                self.findings.warn(
                    f"{what}: 'language' only applies to Text indexes, not {index_type.value}",
                    where,
                    element,
                )
            fields = []
            weights: list[float | None] = []
            for field in self._list(item, "fields", where, element):
                paths = field.get("attributePaths") if isinstance(field, Mapping) else None
                if isinstance(field, Mapping):
                    self._keys(field, _INDEX_FIELD_KEYS, where, element, f"{what} field")
                if (
                    not isinstance(paths, list)
                    or not paths
                    or not all(isinstance(p, str) and p for p in paths)
                ):
                    self.findings.add(
                        f"{what} fields must be [{{attributePaths: [Name, ...]}}]", where, element
                    )
                    continue
                assert isinstance(field, Mapping)
                weights.append(self._weight(field.get("weight"), what, where, element))
                fields.append(list(paths))
            if fields:
                indexes.append(CkIndex(index_type, fields, element, language, weights))
            elif "fields" in item:
                self.findings.add(f"{what} needs at least one field", where, element)
        return indexes

    def _weight(self, value: Any, what: str, where: str, element: str) -> float | None:
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
            self.findings.add(
                f"{what} field weight must be a positive number, not {value!r}", where, element
            )
            return None
        return float(value)
