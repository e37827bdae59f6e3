"""The value nodes of the catalogue (Concat, FormatString, Hash, Distinct, SumAggregation,
ConvertDataType, DateTime, Join): what each writes, and the error naming the node, property and
value when the input does not fit."""

from __future__ import annotations

import asyncio
import hashlib
from datetime import UTC, datetime
from typing import Any

import pytest

from workbench.communication import run_pipeline


def _run(body: str, data: Any) -> Any:
    definition = "triggers: [{type: FromExecutePipelineCommand@1}]\ntransformations:\n" + body
    return asyncio.run(run_pipeline(definition, data, name="values"))


def _ok(body: str, data: Any) -> Any:
    result = _run(body, data)
    assert result.status == "Completed", result.error
    return result.output


def test_text_nodes() -> None:
    out = _ok(
        """
  - {type: Concat@1, paths: [$.a, $.b], targetPath: $.list}
  - {type: Concat@1, paths: [$.name, $.n], separator: "-", targetPath: $.text}
  - type: FormatString@1
    format: "{name}: {v:.1f} kWh ({missing})"
    arguments: [{name: name, path: $.name}, {name: v, path: $.v}, {name: missing, path: $.x}]
    targetPath: $.line
  - {type: Hash@1, path: $.name, targetPath: $.sha}
  - {type: Hash@1, path: $.a, algorithm: MD5, encoding: BASE64, targetPath: $.md5}
""",
        {"a": [1, 2], "b": [3], "name": "M1", "n": 7, "v": 12.345},
    )
    assert out["list"] == [1, 2, 3]
    assert out["text"] == "M1-7"
    assert out["line"] == "M1: 12.3 kWh ()"
    assert out["sha"] == hashlib.sha256(b"M1").hexdigest()
    assert len(out["md5"]) == 24  # 16 bytes in base64


def test_format_string_names_a_placeholder_without_argument() -> None:
    result = _run('  - {type: FormatString@1, format: "{who} {what}", arguments: []}\n', {})
    assert result.status == "Failed"
    assert "FormatString@1" in str(result.error)
    assert "{who} has no argument" in str(result.error)


def test_array_nodes() -> None:
    readings = [
        {"meter": "a", "kWh": 1.5},
        {"meter": "b", "kWh": 2.0},
        {"meter": "a", "kWh": 3.0},
        {"meter": "c"},
    ]
    out = _ok(
        """
  - {type: Distinct@1, path: $.r, keyPath: $.meter, targetPath: $.first}
  - {type: Distinct@1, path: $.tags, targetPath: $.tags}
  - {type: SumAggregation@1, path: $.r, valuePath: $.kWh, targetPath: $.total}
  - {type: SumAggregation@1, path: $.r, valuePath: $.kWh, groupByPath: $.meter, targetPath: $.by}
  - type: Join@1
    path: $.r
    rightPath: $.meters
    keyPath: $.meter
    rightKeyPath: $.id
    targetPath: $.joined
  - {type: Join@1, path: $.r, rightPath: $.meters, keyPath: $.meter, rightKeyPath: $.id,
     joinType: Left, rightTargetKey: info, targetPath: $.left}
""",
        {"r": readings, "tags": ["x", "y", "x"], "meters": [{"id": "a", "site": "S1"}]},
    )
    assert [r["kWh"] for r in out["first"] if "kWh" in r] == [1.5, 2.0]
    assert [r["meter"] for r in out["first"]] == ["a", "b", "c"]
    assert out["tags"] == ["x", "y"]
    assert out["total"] == 6.5
    assert out["by"] == [
        {"key": "a", "sum": 4.5, "count": 2},
        {"key": "b", "sum": 2.0, "count": 1},
    ]
    assert out["joined"] == [
        {"meter": "a", "kWh": 1.5, "id": "a", "site": "S1"},
        {"meter": "a", "kWh": 3.0, "id": "a", "site": "S1"},
    ]
    assert len(out["left"]) == 4
    assert out["left"][0]["info"] == {"id": "a", "site": "S1"}
    assert "info" not in out["left"][1]


def test_sum_of_a_non_number_is_an_error() -> None:
    result = _run("  - {type: SumAggregation@1, path: $.r}\n", {"r": [1, "two"]})
    assert result.status == "Failed"
    assert "item 1: 'two' is not a number" in str(result.error)


@pytest.mark.parametrize(
    ("target", "value", "expected"),
    [
        ("Integer", "42", 42),
        ("Double", "2.5", 2.5),
        ("BOOLEAN", ["yes", "off", 1], [True, False, True]),
        ("String", {"a": 1}, '{"a": 1}'),
        ("DateTime", 0, "1970-01-01T00:00:00+00:00"),
        ("DateTime", "2026-03-01T10:00:00Z", "2026-03-01T10:00:00+00:00"),
    ],
)
def test_convert_data_type(target: str, value: Any, expected: Any) -> None:
    body = f"  - {{type: ConvertDataType@1, path: $.v, targetType: {target}, targetPath: $.out}}\n"
    assert _ok(body, {"v": value})["out"] == expected


def test_convert_names_the_value_that_does_not_convert() -> None:
    body = "  - {type: ConvertDataType@1, path: $.v, targetType: Integer}\n"
    result = _run(body, {"v": "2.5"})
    assert result.status == "Failed"
    assert "'2.5' is not a Integer: it has a fraction" in str(result.error)


def test_date_time() -> None:
    before = datetime.now(UTC)
    out = _ok(
        """
  - {type: DateTime@1, operation: Now, targetPath: $.now}
  - {type: DateTime@1, operation: Parse, path: $.local, format: "%d.%m.%Y %H:%M %z",
     targetPath: $.parsed}
  - {type: DateTime@1, operation: Format, path: $.parsed, format: "%Y/%m/%d", targetPath: $.day}
  - {type: DateTime@1, operation: ToUnixSeconds, path: $.parsed, targetPath: $.unix}
  - {type: DateTime@1, operation: AddSeconds, path: $.parsed, seconds: -3600, targetPath: $.hour}
""",
        {"local": "01.03.2026 11:00 +0100"},
    )
    assert datetime.fromisoformat(out["now"]) >= before
    assert out["parsed"] == "2026-03-01T10:00:00+00:00"
    assert out["day"] == "2026/03/01"
    assert out["unix"] == datetime(2026, 3, 1, 10, tzinfo=UTC).timestamp()
    assert out["hour"] == "2026-03-01T09:00:00+00:00"
    naive = _run("  - {type: DateTime@1, operation: Parse, path: $.t}\n", {"t": "2026-03-01"})
    assert naive.status == "Failed"
    assert "has no zone" in str(naive.error)
