"""Library versions (SemVer ``major.minor.patch``) and NuGet-style version ranges.

A model id is ``Name-Version`` (``Demo.Energy-1.0.0``), a dependency is ``Name-Range``
(``System-[2.0,3.0)``). The name may contain dots and hyphens: it is everything before the last
``-``, which must start a version or a range.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import total_ordering
from typing import Any, TypeVar

from workbench.errors import ValidationError

__all__ = ["Version", "VersionRange", "parse_dependency", "parse_model_id"]

_V = TypeVar("_V")

_VERSION = re.compile(r"^(0|[1-9]\d*)(?:\.(0|[1-9]\d*))?(?:\.(0|[1-9]\d*))?$")
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\-]*$")
_VERSION_FORM = "major.minor.patch such as 1.0.0 (or 1.0)"
_RANGE_FORM = (
    "a version (1.0 = 1.0 or later) or a range such as [1.0,2.0), [1.0,2.0], (1.0,), [1.0]"
)


@total_ordering
@dataclass(frozen=True)
class Version:
    """A SemVer version without pre-release or build parts; ``"2.0"`` parses as ``2.0.0``."""

    major: int
    minor: int = 0
    patch: int = 0

    @classmethod
    def parse(cls, text: Any) -> Version:
        """Parse ``"1.2.3"``, ``"1.2"`` or ``"1"``; raise :class:`ValidationError` otherwise."""
        if isinstance(text, Version):
            return text
        if isinstance(text, bool) or not isinstance(text, str | int | float):
            raise ValidationError(f"version {text!r} is not a string; write it as {_VERSION_FORM}")
        match = _VERSION.match(str(text).strip())
        if match is None:
            raise ValidationError(f"version {text!r} is not valid; write it as {_VERSION_FORM}")
        major, minor, patch = (int(part) if part else 0 for part in match.groups())
        return cls(major, minor, patch)

    def _key(self) -> tuple[int, int, int]:
        return (self.major, self.minor, self.patch)

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, Version):
            return NotImplemented
        return self._key() < other._key()

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}.{self.patch}"


@dataclass(frozen=True)
class VersionRange:
    """A NuGet-style range of versions; ``None`` bounds are open-ended.

    ``str()`` gives the text the range was parsed from (so messages echo the user's spelling),
    else a canonical form. Equality ignores the spelling: ``1.0`` equals ``[1.0.0,)``.
    """

    minimum: Version | None = None
    min_inclusive: bool = True
    maximum: Version | None = None
    max_inclusive: bool = False
    text: str | None = field(default=None, compare=False, repr=False)

    @classmethod
    def parse(cls, text: Any) -> VersionRange:
        """Parse ``a`` (= ``[a,∞)``), ``[a]`` (exactly a), ``[a,b)``, ``(a,b]``, ``(,b)``, ...

        Raise :class:`ValidationError` naming the value and the expected form.
        """
        if isinstance(text, VersionRange):
            return text
        if isinstance(text, bool) or not isinstance(text, str | int | float):
            raise ValidationError(f"version range {text!r} is not a string; use {_RANGE_FORM}")
        spec = re.sub(r"\s+", "", str(text))
        try:
            parsed = cls._parse(spec)
        except ValidationError:
            raise ValidationError(
                f"version range {text!r} is not valid; use {_RANGE_FORM}"
            ) from None
        return parsed

    @classmethod
    def _parse(cls, spec: str) -> VersionRange:
        if not spec:
            raise ValidationError("empty")
        if spec[0] not in "[(":
            return cls(Version.parse(spec), True, None, False, spec)
        if spec[-1] not in "])":
            raise ValidationError("unclosed")
        low_inclusive, high_inclusive = spec[0] == "[", spec[-1] == "]"
        body = spec[1:-1]
        if "," not in body:
            if not (low_inclusive and high_inclusive):
                raise ValidationError("exact version needs [a]")
            exact = Version.parse(body)
            return cls(exact, True, exact, True, spec)
        low_text, _, high_text = body.partition(",")
        if "," in high_text or (not low_text and not high_text):
            raise ValidationError("bad bounds")
        low = Version.parse(low_text) if low_text else None
        high = Version.parse(high_text) if high_text else None
        if low is not None and high is not None:
            empty = low > high or (low == high and not (low_inclusive and high_inclusive))
            if empty:
                raise ValidationError("empty range")
        return cls(
            low, low_inclusive if low else True, high, high_inclusive if high else False, spec
        )

    @classmethod
    def exactly(cls, version: Version) -> VersionRange:
        return cls(version, True, version, True)

    def contains(self, version: Version) -> bool:
        """True when ``version`` lies inside the range."""
        if self.minimum is not None and (
            version < self.minimum or (version == self.minimum and not self.min_inclusive)
        ):
            return False
        return not (
            self.maximum is not None
            and (version > self.maximum or (version == self.maximum and not self.max_inclusive))
        )

    def __contains__(self, version: object) -> bool:
        return isinstance(version, Version) and self.contains(version)

    def canonical(self) -> str:
        """The range in canonical NuGet notation (``[2.0.0,3.0.0)``, ``[1.0.0]``, ``1.0.0``)."""
        if self.minimum is None and self.maximum is None:
            return "*"
        if self.minimum is not None and self.minimum == self.maximum:
            return f"[{self.minimum}]"
        if self.maximum is None and self.min_inclusive and self.minimum is not None:
            return str(self.minimum)
        low, high = "(", ")"
        if self.minimum is not None:
            low = f"{'[' if self.min_inclusive else '('}{self.minimum}"
        if self.maximum is not None:
            high = f"{self.maximum}{']' if self.max_inclusive else ')'}"
        return f"{low},{high}"

    def __str__(self) -> str:
        return self.text or self.canonical()


def _split_name(text: Any, what: str, form: str) -> tuple[str, str]:
    if not isinstance(text, str) or "-" not in text:
        raise ValidationError(f"{what} {text!r} is not of the form {form}")
    name, _, rest = text.strip().rpartition("-")
    if not _NAME.match(name):
        raise ValidationError(
            f"{what} {text!r} has an invalid library name {name!r}; use letters, digits, "
            f"dots, hyphens and underscores, as in {form}"
        )
    return name, rest


def parse_model_id(text: Any) -> tuple[str, Version]:
    """Split ``"Demo.Energy-1.0.0"`` into ``("Demo.Energy", Version(1, 0, 0))``."""
    return _parse_named(text, "model id", "Name-Version such as Demo.Energy-1.0.0", Version.parse)


def parse_dependency(text: Any) -> tuple[str, VersionRange]:
    """Split ``"System-[2.0,3.0)"`` into ``("System", VersionRange(...))``."""
    form = "Name-Range such as System-[2.0,3.0) or Basic-1.0"
    hint = f"; the range must be {_RANGE_FORM}"
    return _parse_named(text, "dependency", form, VersionRange.parse, hint)


def _parse_named(
    text: Any, what: str, form: str, parse: Callable[[str], _V], hint: str = ""
) -> tuple[str, _V]:
    """``Name-<rest>`` with ``rest`` parsed by ``parse``; the error names ``form`` (+ ``hint``)."""
    name, rest = _split_name(text, what, form)
    try:
        return name, parse(rest)
    except ValidationError:
        raise ValidationError(f"{what} {text!r} is not of the form {form}{hint}") from None
