"""Shared checks of one element entry: known keys, references, booleans, strings, lists.

:class:`EntryChecks` is the base of the element and index parsers. Unknown keys are warnings
(:class:`~workbench.ck.findings.Findings`); missing keys and wrong value kinds are errors. A
reference is resolved to a full id here; whether its library is in the dependency closure is
checked when the model is resolved (the closure is not known while one library loads).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from workbench.ck.findings import Findings
from workbench.ck.references import resolve_reference
from workbench.errors import ModelError

__all__ = ["EntryChecks", "KeySpec"]

#: (required keys, optional keys) of one kind of entry
KeySpec = tuple[set[str], set[str]]


class EntryChecks:
    """Helpers that check one entry and record problems in ``findings``."""

    def __init__(
        self, library_name: str, location: Callable[[str], str], findings: Findings
    ) -> None:
        self.name = library_name
        self.location = location
        self.findings = findings
        #: libraries referenced by this library: name -> (file, element) of the first use
        self.referenced: dict[str, tuple[str, str]] = {}

    def _keys(
        self, entry: Mapping[str, Any], keys: KeySpec, where: str, element: str, what: str
    ) -> None:
        required, optional = keys
        self.findings.unknown_keys(set(entry), what, required | optional, where, element)
        for key in sorted(required - set(entry)):
            self.findings.add(f"missing key {key!r} in {what}", where, element)

    def _ref(self, value: Any, where: str, element: str, key: str) -> str | None:
        if value is None:
            return None  # reported as a missing key
        try:
            resolved = resolve_reference(value, self.name)
        except ModelError as exc:
            self.findings.add(f"{key}: {exc.message}", where, element)
            return None
        library = resolved.rpartition("/")[0]
        if library != self.name:
            self.referenced.setdefault(library, (where, f"{element}: {key} {value!r}"))
        return resolved

    def _bool(self, entry: Mapping[str, Any], key: str, where: str, element: str) -> bool:
        value = entry.get(key, False)
        if not isinstance(value, bool):
            self.findings.add(f"{key} must be true or false, not {value!r}", where, element)
            return False
        return value

    def _text(self, entry: Mapping[str, Any], key: str, where: str, element: str) -> str | None:
        value = entry.get(key)
        if value is not None and not isinstance(value, str):
            self.findings.add(f"{key} must be a string, not {value!r}", where, element)
            return None
        return value

    def _list(self, entry: Mapping[str, Any], key: str, where: str, element: str) -> list[Any]:
        value = entry.get(key)
        if value is None:
            return []
        if not isinstance(value, list):
            self.findings.add(f"{key} must be a list, not {value!r}", where, element)
            return []
        return copy.deepcopy(value)

    def _mappings(
        self,
        entry: Mapping[str, Any],
        key: str,
        where: str,
        element: str,
        label: str,
        form: str,
        keys: KeySpec,
    ) -> Iterator[tuple[str, Mapping[str, Any]]]:
        """``(label index, item)`` per mapping in the list ``entry[key]``, its keys checked
        against ``keys`` (required, optional); other items are errors."""
        for index, item in enumerate(self._list(entry, key, where, element)):
            what = f"{label} {index}"
            if not isinstance(item, Mapping):
                self.findings.add(f"{what} must be {form}", where, element)
                continue
            self._keys(item, keys, where, element, what)
            yield what, item
