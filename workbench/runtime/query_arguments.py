"""The arguments of ``entities.find`` and ``entities.aggregate``, defined once for the
in-process service and the remote client: :class:`FindArguments`, :class:`AggregateArguments`
and the decorators :func:`find_keywords` and :func:`aggregate_keywords`.

A method decorated with :func:`find_keywords` is written as ``method(self, arguments)`` and
called as ``method(ck_type_id, *, where=..., first=..., ...)``: its keywords are the fields of
:class:`FindArguments`, for mypy (through a ``ParamSpec``) and for ``help()`` alike. A new keyword
is therefore added here, once, and every ``find`` (``EntityService.find``/``build_query``,
``RemoteEntityService.find``) takes it; the same for ``aggregate``.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Iterable, Sequence
from dataclasses import KW_ONLY, dataclass
from typing import TYPE_CHECKING, Concatenate, ParamSpec, TypeVar

if TYPE_CHECKING:
    from workbench.runtime.filters import WhereClause

__all__ = ["AggregateArguments", "FindArguments", "aggregate_keywords", "find_keywords"]

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


@dataclass(frozen=True)
class AggregateArguments:
    """Statistics over the entities of ``ck_type_id`` that ``find`` would return for the same
    ``where``/``search``/``include_archived``: per ``group_by`` key (one group without), the
    ``avg``/``count``/``min``/``max``/``sum`` of the attribute paths named, groups paged by
    ``first``/``after``. ``create_index`` first creates the store's index for the aggregation
    (in process only, for aggregations that run often)."""

    ck_type_id: str
    _: KW_ONLY
    group_by: Sequence[str] = ()
    avg: Sequence[str] = ()
    count: Sequence[str] = ()
    min: Sequence[str] = ()
    max: Sequence[str] = ()
    sum: Sequence[str] = ()
    where: Iterable[WhereClause] = ()
    search: str | None = None
    search_paths: Sequence[str] = ("name",)
    include_archived: bool = False
    resolve_enum_values_to_names: bool = True
    first: int | None = None
    after: str | None = None
    create_index: bool = False

    def __post_init__(self) -> None:
        for name in ("group_by", "avg", "count", "min", "max", "sum", "where", "search_paths"):
            object.__setattr__(self, name, tuple(getattr(self, name)))


_A = TypeVar("_A")


def _keywords_of(
    of: Callable[_P, _A],
) -> Callable[[Callable[[_S, _A], _R]], Callable[Concatenate[_S, _P], _R]]:
    """A decorator turning ``method(self, arguments)`` into ``method(self, <of's parameters>)``,
    ``arguments`` being ``of(...)`` of them."""
    keywords = list(inspect.signature(of).parameters.values())
    names = ", ".join(p.name for p in keywords[1:])

    def decorate(method: Callable[[_S, _A], _R]) -> Callable[Concatenate[_S, _P], _R]:
        @functools.wraps(method)
        def call(self: _S, /, *args: _P.args, **kwargs: _P.kwargs) -> _R:
            try:
                arguments = of(*args, **kwargs)
            except TypeError as exc:
                raise TypeError(
                    f"{method.__qualname__}(): {exc}; it takes a ck_type_id and the keywords "
                    f"{names}"
                ) from None
            return method(self, arguments)

        signature = inspect.signature(method)
        own = list(signature.parameters.values())[:1]  # self
        call.__signature__ = signature.replace(  # type: ignore[attr-defined]
            parameters=[*own, *keywords]
        )
        return call

    return decorate


#: ``method(self, arguments)`` as ``method(self, ck_type_id, *, <the FindArguments fields>)``
find_keywords = _keywords_of(FindArguments)
#: ``method(self, arguments)`` as ``method(self, ck_type_id, *, <the AggregateArguments fields>)``
aggregate_keywords = _keywords_of(AggregateArguments)
