"""The built-in System library (``System-2.0.0``), shipped as YAML in ``workbench/ck/system/``.

It declares the abstract root type ``System/Entity`` (with the ``Related`` association to any
entity), the attributes ``Name``, ``DisplayName``, ``Description`` and ``Enabled``, and the roles
``ParentChild`` (``Parent`` One / ``Children`` N) and ``Related`` (``RelatesTo`` N / ``RelatesFrom``
N). Every model contains it; :func:`workbench.ck.resolver.resolve_model` adds it when absent.
"""

from __future__ import annotations

import copy
from functools import cache
from pathlib import Path

from workbench.ck.loader import load_library
from workbench.ck.model import CkLibrary

__all__ = ["ROOT_TYPE_ID", "SYSTEM_LIBRARY_NAME", "builtin_libraries", "system_library"]

SYSTEM_LIBRARY_NAME = "System"
#: The type every other type derives from.
ROOT_TYPE_ID = "System/Entity"
_FOLDER = Path(__file__).with_name("system")


@cache
def _load() -> CkLibrary:
    return load_library(_FOLDER)


#: further built-in libraries every tenant sees, compiled files next to the System folder
_BUILTIN_FILES = ("System.Bot.json", "System.Communication.json")


@cache
def _load_builtins() -> tuple[CkLibrary, ...]:
    return tuple(load_library(_FOLDER / name) for name in _BUILTIN_FILES)


def builtin_libraries() -> list[CkLibrary]:
    """System and the other built-in libraries (``System.Bot``, ``System.Communication``):
    fresh copies, dependencies first."""
    return [system_library(), *copy.deepcopy(_load_builtins())]


def system_library() -> CkLibrary:
    """The System library; a fresh copy of a cached load, so callers may not disturb each other."""
    return copy.deepcopy(_load())
