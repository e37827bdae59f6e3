"""References between model elements: ``${this}/X``, ``${Lib}/X`` and ``Lib/X`` → full id ``Lib/X``.

A full id names the library (without version) and the element: ``Demo.Energy/EnergyMeter``.
"""

from __future__ import annotations

import re

from workbench.errors import ModelError

__all__ = [
    "THIS_PLACEHOLDERS",
    "full_id",
    "is_valid_element_id",
    "resolve_reference",
    "split_id",
    "without_version_suffixes",
]

#: Placeholders naming the declaring library (``${thisModel}`` is the older spelling).
THIS_PLACEHOLDERS = frozenset({"this", "thisModel"})

_ELEMENT_ID = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\-]*$")
_REFERENCE = re.compile(
    r"^(?:\$\{(?P<placeholder>[^}]+)\}|(?P<library>[^/${}]+))/(?P<element>[^/]+)$"
)
_FORM = "${this}/Element, ${Library}/Element or Library/Element"
_VERSION_SUFFIX = re.compile(r"-\d+(?:\.\d+){0,2}$")


def is_valid_element_id(element_id: str) -> bool:
    """True for a plain element id: a letter or ``_`` then letters, digits, ``_``, ``.``, ``-``."""
    return bool(_ELEMENT_ID.match(element_id))


def full_id(library_name: str, element_id: str) -> str:
    """``full_id("Demo.Energy", "Meter") == "Demo.Energy/Meter"``."""
    return f"{library_name}/{element_id}"


def split_id(element_full_id: str) -> tuple[str, str]:
    """``split_id("Demo.Energy/Meter") == ("Demo.Energy", "Meter")``."""
    library, _, element = element_full_id.rpartition("/")
    return library, element


def resolve_reference(reference: object, library_name: str) -> str:
    """The full id a reference written in library ``library_name`` stands for.

    Raise :class:`ModelError` when ``reference`` is not one of the three accepted forms.
    """
    if not isinstance(reference, str):
        raise ModelError(f"reference {reference!r} is not a string; write it as {_FORM}")
    match = _REFERENCE.match(reference.strip())
    if match is None or not is_valid_element_id(match["element"]):
        raise ModelError(f"reference {reference!r} is not valid; write it as {_FORM}")
    library = match["placeholder"] or match["library"]
    if library in THIS_PLACEHOLDERS:
        library = library_name
    return full_id(library.strip(), match["element"])


def without_version_suffixes(element_full_id: str) -> str:
    """The id without version suffixes: ``System/Name-1`` and ``System-2.0.0/Name-1.0`` give
    ``System/Name``. Newer exported runtime files write ids this way; an id that is itself
    declared with such a suffix is looked up as written first (see the runtime file reader)."""
    library, _, element = element_full_id.rpartition("/")
    if not library:
        return element_full_id
    return f"{_VERSION_SUFFIX.sub('', library)}/{_VERSION_SUFFIX.sub('', element)}"
