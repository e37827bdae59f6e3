"""Errors and warnings found while loading a library: the liberal-in-what-we-accept rule.

A key the loader does not know, or a spelling it can read but would not write (a model id without
a version, a dependency without a range), is a *warning*: the library loads, the key is kept and
exported again. Under ``strict`` every warning counts as an error instead. Problems that would make
the model wrong (a bad value type, a missing reference) are always errors.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from workbench.errors import ErrorCollector, ErrorDetail

__all__ = ["Findings"]


@dataclass
class Findings:
    """Collects the errors and warnings of one library; ``warn`` honours ``strict``."""

    strict: bool = False
    errors: ErrorCollector = field(default_factory=ErrorCollector)
    warnings: list[ErrorDetail] = field(default_factory=list)

    def add(self, message: str, location: str | None = None, element: str | None = None) -> None:
        """Record an error."""
        self.errors.add(message, location, element)

    def warn(self, message: str, location: str | None = None, element: str | None = None) -> None:
        """Record a warning (an error under ``strict``)."""
        if self.strict:
            self.errors.add(f"{message} (an error under --strict)", location, element)
        else:
            self.warnings.append(ErrorDetail(message, location, element))

    def unknown_keys(
        self, keys: set[str], what: str, known: set[str], location: str, element: str | None
    ) -> None:
        """Warn about each key of ``keys`` (found in ``what``) that is not in ``known``."""
        for key in sorted(keys - known - {"$schema"}):
            self.warn(
                f"unknown key {key!r} in {what} is kept but not used; known keys: "
                f"{', '.join(sorted(known))}",
                location,
                element,
            )
