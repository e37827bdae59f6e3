"""Association fields load for a whole page at once (no N+1 store calls)."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from tests.graphql.conftest import Run


@pytest.fixture
def calls(meters: Any, monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    """Counts entity-store calls by method name."""
    counter: Counter[str] = Counter()
    store = meters.entity_store
    for name in ("associations", "get_many", "find"):
        original = getattr(store, name)

        def counted(*args: Any, _name: str = name, _original: Any = original, **kwargs: Any) -> Any:
            counter[_name] += 1
            return _original(*args, **kwargs)

        monkeypatch.setattr(store, name, counted)
    return counter


def test_parents_of_a_page_take_one_links_call_and_one_read(gql: Run, calls: Counter[str]) -> None:
    data = gql(
        """{ runtime { rtDemoEnergyEnergyMeter(first: 100) { items {
            name parent { ... on DemoEnergyBuilding { name } } } } } }"""
    )
    items = data["runtime"]["rtDemoEnergyEnergyMeter"]["items"]
    assert len(items) == 100
    assert all(i["parent"]["name"] for i in items)
    assert calls == Counter({"find": 1, "associations": 1, "get_many": 1})


def test_nested_and_list_associations_batch_per_level(gql: Run, calls: Counter[str]) -> None:
    data = gql(
        """{ runtime { rtDemoEnergyEnergyMeter(first: 100) { items {
            parent { ... on DemoEnergyBuilding { parent { ... on DemoEnergySite { name } } } }
            suppliedBy { rtId }
            supplies(first: 5) { items { rtId } }
            relatesTo { totalCount } } } } }"""
    )
    assert len(data["runtime"]["rtDemoEnergyEnergyMeter"]["items"]) == 100
    # page; outbound links of the page (parent, suppliedBy, relatesTo share them), inbound
    # links (supplies); parents' own links; reads of parents, grandparents, suppliers
    assert calls["associations"] == 3
    assert calls["find"] <= 1 + 1  # the page, plus one query for the `supplies` candidates
    assert calls["get_many"] <= 3
