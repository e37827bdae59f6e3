"""The README's Python example runs as written (against a temporary data directory)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _python_example() -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text[text.index("### Python") :]
    match = re.search(r"```python\n(.*?)```", section, re.S)
    assert match, "README has no Python example under '### Python'"
    return match.group(1)


def test_readme_python_example_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    code = _python_example()
    assert 'workbench.open("/tmp/wb")' in code
    monkeypatch.chdir(ROOT)  # the example names the library by its path in the checkout
    code = code.replace('"/tmp/wb"', repr(str(tmp_path / "wb")))
    namespace: dict[str, object] = {}
    exec(compile(code, "README.md", "exec"), namespace)
    page = namespace["page"]
    assert [e["serialNumber"] for e in page] == ["EM-1"]  # type: ignore[attr-defined]


def _block(heading: str, language: str, containing: str) -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text[text.index(heading) :]
    for match in re.finditer(rf"```{language}\n(.*?)```", section, re.S):
        if containing in match.group(1):
            return match.group(1)
    raise AssertionError(f"README has no {language} block with {containing!r} under {heading}")


def test_readme_stream_data_graphql_query_runs(demo: object) -> None:
    """The streamData example answers on a tenant with points in its range."""
    from datetime import UTC, datetime

    from tests.conftest import METER_1, METER_2
    from workbench.streams.demo import demo_points

    query = _block("### The Asset Repository", "graphql", "streamData")
    tenant = demo  # Demo.Energy with the sample entities
    start = datetime(2026, 1, 1, tzinfo=UTC)
    tenant.streams("Demo.Energy/EnergyMeter").write(  # type: ignore[attr-defined]
        demo_points([METER_1, METER_2], start, days=2 / 24, step="1s")
    )
    data = tenant.graphql(query, raw=True)  # type: ignore[attr-defined]
    points = data["streamData"]["tsDemoEnergyEnergyMeter"]
    assert len(points["items"]) == 3
    assert points["pageInfo"]["hasNextPage"] is True
    assert set(points["items"][0]) == {"rtId", "timeStamp", "voltage", "current"}
    aggregate = data["streamData"]["tsDemoEnergyEnergyMeterAggregate"]
    assert aggregate["interval"] == "15m"
    assert len(aggregate["items"]) == 2 * 4  # two meters, four 15-minute buckets in the hour
