"""The keywords of ``entities.find``/``aggregate``, defined once (runtime/query_arguments.py)."""

from __future__ import annotations

import inspect
from dataclasses import fields

import pytest

from workbench.client.remote_entities import RemoteEntityService
from workbench.runtime.query_arguments import AggregateArguments, FindArguments
from workbench.runtime.service import EntityService

FIND_KEYWORDS = [f.name for f in fields(FindArguments)]
AGGREGATE_KEYWORDS = [f.name for f in fields(AggregateArguments)]


@pytest.mark.parametrize("cls", [EntityService, RemoteEntityService])
def test_find_and_aggregate_show_their_keywords(
    cls: type[EntityService | RemoteEntityService],
) -> None:
    find = inspect.signature(cls.find)
    assert list(find.parameters) == ["self", *FIND_KEYWORDS]
    assert find.parameters["first"].default == 100
    assert find.parameters["where"].kind is inspect.Parameter.KEYWORD_ONLY
    aggregate = inspect.signature(cls.aggregate)
    assert list(aggregate.parameters) == ["self", *AGGREGATE_KEYWORDS]
    assert cls.find.__doc__


def test_build_query_takes_the_find_keywords() -> None:
    assert list(inspect.signature(EntityService.build_query).parameters) == [
        "self",
        *FIND_KEYWORDS,
    ]


def test_an_unknown_keyword_names_the_method_and_the_keywords() -> None:
    service = object.__new__(RemoteEntityService)
    with pytest.raises(TypeError, match=r"RemoteEntityService\.find\(\).*'firstt'.*include_total"):
        service.find("Demo.Energy/Meter", firstt=3)  # type: ignore[call-arg]


def test_arguments_can_be_read_twice() -> None:
    arguments = FindArguments("X", where=(w for w in ["a > 1"]), rt_ids=["r"])
    assert arguments.where == ("a > 1",)
    assert list(arguments.where) == list(arguments.where)
    assert arguments.rt_ids == ("r",)
