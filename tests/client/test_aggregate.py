"""``t.entities.aggregate(...)`` -> DataFrame, the same from the in-process and remote clients."""

from __future__ import annotations

from typing import Any

import pandas as pd
import pytest

from workbench.errors import ValidationError


def test_group_by_enum_and_parent_name(sdk: Any) -> None:
    frame = sdk.entities.aggregate(
        "Demo.Energy/Meter",
        group_by=["state", "parent->name"],
        sum=["voltage"],
        count=["voltage"],
        max=["name"],
    )
    assert isinstance(frame, pd.DataFrame)
    assert list(frame.columns) == [
        "state",
        "parent->name",
        "count",
        "voltage_count",
        "voltage_sum",
        "name_max",
    ]
    rows = frame.to_dict("records")
    assert [(r["state"], r["parent->name"], r["count"]) for r in rows] == [
        ("Active", "Hall A", 1),
        ("Faulty", "Hall A", 1),
    ]
    assert rows[0]["voltage_sum"] == pytest.approx(231.5)
    assert rows[0]["name_max"] == "Meter-001"
    assert rows[1]["voltage_count"] == 0


def test_whole_set_with_a_filter(sdk: Any) -> None:
    frame = sdk.entities.aggregate(
        "Demo.Energy/NamedAsset", count=["name"], where=["name LIKE 'Meter%'"]
    )
    assert frame.to_dict("records") == [{"count": 2, "name_count": 2}]


def test_groups_page(sdk: Any) -> None:
    first = sdk.entities.aggregate("Demo.Energy/Meter", group_by=["state"], first=1)
    assert first["state"].tolist() == ["Active"]
    everything = sdk.entities.aggregate(
        "Demo.Energy/Meter", group_by=["state"], resolve_enum_values_to_names=False
    )
    assert everything["state"].tolist() == [1, 2]


def test_bad_path_is_a_validation_error(sdk: Any) -> None:
    with pytest.raises(ValidationError, match="cannot sum 'name'"):
        sdk.entities.aggregate("Demo.Energy/Meter", sum=["name"])


def test_in_process_only_keywords(sdk: Any) -> None:
    """``include_archived``/``create_index`` run in process; the remote client names the fix."""
    if sdk.__class__.__name__ == "Tenant":
        frame = sdk.entities.aggregate(
            "Demo.Energy/Meter", count=["name"], include_archived=True, create_index=True
        )
        assert frame.to_dict("records") == [{"count": 2, "name_count": 2}]
    else:
        with pytest.raises(ValidationError, match=r"include_archived=True.*workbench\.open"):
            sdk.entities.aggregate("Demo.Energy/Meter", count=["name"], include_archived=True)
