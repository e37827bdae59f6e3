from __future__ import annotations

import pytest

from workbench.ck import Dependency, Version, VersionRange, parse_dependency, parse_model_id
from workbench.errors import ValidationError


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1.2.3", Version(1, 2, 3)),
        ("2.0", Version(2, 0, 0)),
        ("3", Version(3)),
        (" 1.0.0 ", Version(1)),
    ],
)
def test_version_parse(text: str, expected: Version) -> None:
    assert Version.parse(text) == expected


def test_version_is_ordered_hashable_and_prints_three_parts() -> None:
    versions = [Version.parse(v) for v in ("1.10.0", "1.2.0", "1.2", "0.9.9")]
    assert sorted(set(versions)) == [Version(0, 9, 9), Version(1, 2), Version(1, 10)]
    assert str(Version.parse("2.0")) == "2.0.0"
    assert Version(1) < Version(1, 0, 1) <= Version(1, 0, 1)


@pytest.mark.parametrize("text", ["", "1.x", "1.2.3.4", "v1.0", "01.0", "1.0.0-beta", None, True])
def test_version_rejects_bad_input(text: object) -> None:
    with pytest.raises(ValidationError, match=r"major\.minor\.patch"):
        Version.parse(text)


# range text, inside, outside
RANGES = [
    ("[2.0,3.0)", ["2.0.0", "2.9.9"], ["1.9.9", "3.0.0"]),
    ("[2.0,3.0]", ["2.0.0", "3.0.0"], ["3.0.1"]),
    ("(2.0,3.0)", ["2.0.1"], ["2.0.0", "3.0.0"]),
    ("(2.0,3.0]", ["3.0.0"], ["2.0.0"]),
    ("[1.5]", ["1.5.0"], ["1.5.1", "1.4.0"]),
    ("1.0", ["1.0.0", "99.0.0"], ["0.9.0"]),
    ("(,2.0)", ["0.0.1", "1.9.9"], ["2.0.0"]),
    ("(,2.0]", ["2.0.0"], ["2.0.1"]),
    ("[1.0,)", ["1.0.0", "5.0.0"], ["0.1.0"]),
    ("(1.0,)", ["1.0.1"], ["1.0.0"]),
    ("[ 1.0 , 2.0 )", ["1.0.0"], ["2.0.0"]),
]


@pytest.mark.parametrize(("text", "inside", "outside"), RANGES)
def test_range_contains(text: str, inside: list[str], outside: list[str]) -> None:
    version_range = VersionRange.parse(text)
    for version in inside:
        assert version_range.contains(Version.parse(version)), version
        assert Version.parse(version) in version_range
    for version in outside:
        assert not version_range.contains(Version.parse(version)), version


def test_range_str_keeps_spelling_and_equality_ignores_it() -> None:
    assert str(VersionRange.parse("[2.0,3.0)")) == "[2.0,3.0)"
    assert VersionRange.parse("[2.0,3.0)").canonical() == "[2.0.0,3.0.0)"
    assert VersionRange.parse("1.0") == VersionRange.parse("[1.0.0,)")
    assert str(VersionRange.exactly(Version(1, 5))) == "[1.5.0]"
    assert VersionRange.parse("(,2.0)").canonical() == "(,2.0.0)"
    assert VersionRange.parse(VersionRange.parse(str(VersionRange.parse("1.0")))) == VersionRange(
        Version(1)
    )


@pytest.mark.parametrize(
    "text", ["", "[", "[1.0", "(1.0)", "[3.0,2.0]", "(1.0,1.0)", "[1.0,2.0,3.0]", "(,)", "[a,b]"]
)
def test_range_rejects_bad_input(text: str) -> None:
    with pytest.raises(ValidationError, match=r"version range .* is not valid; use"):
        VersionRange.parse(text)


@pytest.mark.parametrize(
    ("text", "name", "version"),
    [
        ("Demo.Energy-1.0.0", "Demo.Energy", Version(1)),
        ("System-2.0", "System", Version(2)),
        ("My-Lib.With-Hyphens-3.1.4", "My-Lib.With-Hyphens", Version(3, 1, 4)),
    ],
)
def test_parse_model_id(text: str, name: str, version: Version) -> None:
    assert parse_model_id(text) == (name, version)


@pytest.mark.parametrize(
    "text", ["Demo.Energy", "Demo.Energy-", "-1.0.0", "Demo Energy-1.0", "A-[1.0,2.0)"]
)
def test_parse_model_id_rejects_bad_input(text: str) -> None:
    with pytest.raises(ValidationError, match="Name-Version"):
        parse_model_id(text)


def test_parse_dependency() -> None:
    name, version_range = parse_dependency("Industry.Basic-[2.0,3.0)")
    assert name == "Industry.Basic"
    assert version_range == VersionRange(Version(2), True, Version(3), False)
    assert str(Dependency.parse("My-Lib-[1.0]")) == "My-Lib-[1.0]"
    assert Dependency.parse("Basic-1.0").range.maximum is None


@pytest.mark.parametrize("text", ["Basic", "Basic-[2.0,", "Basic-x", "Basic-(1.0)", 42])
def test_parse_dependency_rejects_bad_input(text: object) -> None:
    with pytest.raises(ValidationError, match=r"Name-Range such as System-\[2\.0,3\.0\)"):
        parse_dependency(text)
