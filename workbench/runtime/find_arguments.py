"""The arguments of ``entities.find``, defined once for the in-process service and the remote
client: :class:`FindArguments` and the decorator :func:`find_keywords`.

A method decorated with :func:`find_keywords` is written as ``method(self, arguments)`` and
called as ``method(ck_type_id, *, where=..., first=..., ...)``: its keywords are the fields of
:class:`FindArguments`, for mypy (through a ``ParamSpec``) and for ``help()`` alike. A new keyword
is therefore added here, once, and every ``find`` (``EntityService.find``/``build_query``,
``RemoteEntityService.find``) takes it.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Iterable, Sequence
from dataclasses import KW_ONLY, dataclass
from typing import TYPE_CHECKING, Concatenate, ParamSpec, TypeVar

if TYPE_CHECKING:
    from workbench.runtime.filters import WhereClause

__all__ = ["FindArguments", "find_keywords"]

_P = ParamSpec("_P")
_S = TypeVar("_S")
_R = TypeVar("_R")


@dataclass(frozen=True)
class FindArguments:
    """A page of entities of ``ck_type_id`` (and its subtypes unless ``polymorphic=False``).

    ``where`` items are ``"voltage > 230"`` strings, ``(path, OPERATOR, value)`` tuples,
    GraphQL-style dicts or :class:`~workbench.runtime.filters.FieldFilter`; ``search`` looks for
    a term in ``search_paths``; ``sort`` items are ``"-serialNumber"`` strings or
    ``(path, descending)`` tuples; ``first``/``after`` page (``first=None``: every match);
    ``rt_ids`` keeps those entities only; ``include_total`` counts every match.
    """

    ck_type_id: str
    _: KW_ONLY
    where: Iterable[WhereClause] = ()
    search: str | None = None
    search_paths: Sequence[str] = ("name",)
    sort: Iterable[str | tuple[str, bool]] = ()
    first: int | None = 100
    after: str | None = None
    rt_ids: Sequence[str] | None = None
    include_archived: bool = False
    include_total: bool = False
    polymorphic: bool = True

    def __post_init__(self) -> None:
        # kept as tuples: the arguments can be read more than once (a generator could not)
        object.__setattr__(self, "where", tuple(self.where))
        object.__setattr__(self, "search_paths", tuple(self.search_paths))
        object.__setattr__(self, "sort", tuple(self.sort))
        if self.rt_ids is not None:
            object.__setattr__(self, "rt_ids", tuple(self.rt_ids))


#: ``ck_type_id`` and the keywords, as ``FindArguments(...)`` takes them
_KEYWORDS = list(inspect.signature(FindArguments).parameters.values())


def _taking(
    of: Callable[_P, FindArguments],
) -> Callable[[Callable[[_S, FindArguments], _R]], Callable[Concatenate[_S, _P], _R]]:
    def decorate(method: Callable[[_S, FindArguments], _R]) -> Callable[Concatenate[_S, _P], _R]:
        @functools.wraps(method)
        def call(self: _S, /, *args: _P.args, **kwargs: _P.kwargs) -> _R:
            try:
                arguments = of(*args, **kwargs)
            except TypeError as exc:
                raise TypeError(
                    f"{method.__qualname__}(): {exc}; it takes a ck_type_id and the keywords "
                    f"{', '.join(p.name for p in _KEYWORDS[1:])}"
                ) from None
            return method(self, arguments)

        signature = inspect.signature(method)
        own = list(signature.parameters.values())[:1]  # self
        call.__signature__ = signature.replace(  # type: ignore[attr-defined]
            parameters=[*own, *_KEYWORDS]
        )
        return call

    return decorate


#: ``method(self, arguments)`` as ``method(self, ck_type_id, *, <the FindArguments fields>)``
find_keywords = _taking(FindArguments)
