from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.bots.builtin.conftest import seed
from workbench.bots.builtin.selection import find_all, parse_filter
from workbench.bots.builtin.transfer import (
    export_selection,
    export_streams,
    import_selection,
    import_streams,
)
from workbench.errors import NotFound, ValidationError

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def _line_with_machines(tenant: Any) -> tuple[str, list[str]]:
    line = tenant.entities.create("BotJobs/Line", {"name": "Line 1"})
    machines = [
        tenant.entities.create(
            "BotJobs/Machine",
            {"name": f"M{i}", "power": float(i)},
            associations=[("System/Related", line.rt_id)],
        ).rt_id
        for i in range(3)
    ]
    return line.rt_id, machines


def test_parse_filter_takes_strings_lists_and_json() -> None:
    assert parse_filter(None) == []
    assert parse_filter("power GREATER_THAN 1") == ["power GREATER_THAN 1"]
    assert parse_filter('["a EQUALS 1", {"attributePath": "b"}]') == [
        "a EQUALS 1",
        {"attributePath": "b"},
    ]
    with pytest.raises(ValidationError, match="not valid JSON"):
        parse_filter("[oops")


def test_export_by_filter_imports_into_a_new_tenant(home: Any, tenant: Any, tmp_path: Path) -> None:
    line, machines = _line_with_machines(tenant)
    manifest = export_selection(
        tenant,
        tmp_path / "out",
        libraries=["BotJobs"],
        ck_type_id="BotJobs/Machine",
        where=["power GREATER_THAN 0"],
    )
    assert manifest["libraries"] == ["BotJobs-1.0.0"]
    assert manifest["rtIds"] == sorted(machines[1:])
    copy = home.tenants.create("copy")
    result = import_selection(copy, tmp_path / "out")
    assert result == {"libraries": ["BotJobs-1.0.0"], "created": 2, "updated": 0}
    restored = {e.rt_id: e for e in find_all(copy, "BotJobs/Machine")}
    assert sorted(restored) == sorted(machines[1:])
    for rt_id in machines[1:]:
        assert restored[rt_id].attributes == tenant.entities.get(rt_id).attributes
    assert copy.entities.links(machines[1:]) == []  # the line was not exported: link dropped
    assert line not in restored


def test_export_names_an_unknown_library(tenant: Any, tmp_path: Path) -> None:
    with pytest.raises(NotFound, match="library Nope is not in tenant 'jobs'"):
        export_selection(tenant, tmp_path, libraries=["Nope"])
    with pytest.raises(ValidationError, match="set ck_type_id as well"):
        export_selection(tenant, tmp_path, where=["name EQUALS x"])


def test_stream_archive_round_trip(home: Any, tenant: Any, tmp_path: Path) -> None:
    _, machines = _line_with_machines(tenant)
    points = [
        {"rtId": m, "timestamp": T0 + timedelta(minutes=i), "power": float(i), "temperature": 20.5}
        for m in machines
        for i in range(10)
    ]
    tenant.streams("BotJobs/Machine").write(points)
    counts = export_streams(
        tenant, tmp_path / "s", ["BotJobs/Machine"], from_=T0, to=T0 + timedelta(minutes=5)
    )
    assert counts == {"BotJobs/Machine": 15}
    copy = seed(home.tenants.create("copy"), demo=False)
    export_selection(tenant, tmp_path / "e", libraries=[], ck_type_id="BotJobs/Machine")
    import_selection(copy, tmp_path / "e")
    assert import_streams(copy, tmp_path / "s") == {"BotJobs/Machine": 15}
    original = tenant.streams("BotJobs/Machine").read(T0, T0 + timedelta(minutes=5)).to_pandas()
    copied = copy.streams("BotJobs/Machine").read().to_pandas()
    key = ["rtId", "timeStamp"]
    assert (
        copied.sort_values(key)
        .reset_index(drop=True)
        .equals(original.sort_values(key).reset_index(drop=True))
    )
