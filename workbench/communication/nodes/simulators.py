"""Value simulators of ``Simulation@1``, by ``simulatorKey``; each takes its ``configuration``
(a relaxed JSON object such as ``{min:15, max:35}``)."""

from __future__ import annotations

import json
import math
import random
import re
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from workbench.errors import ValidationError

__all__ = ["SIMULATORS", "parse_configuration", "simulate"]

_WORDS = [
    "lorem",
    "ipsum",
    "dolor",
    "sit",
    "amet",
    "consectetur",
    "adipiscing",
    "elit",
    "sed",
    "do",
    "eiusmod",
    "tempor",
    "incididunt",
    "ut",
    "labore",
    "et",
    "dolore",
    "magna",
    "aliqua",
]


def parse_configuration(text: Any) -> dict[str, Any]:
    """``{min:15, max:35}`` (keys unquoted or quoted) → ``{'min': 15, 'max': 35}``."""
    if text is None or text == "":
        return {}
    if isinstance(text, Mapping):
        return dict(text)
    quoted = re.sub(r"([{,]\s*)([A-Za-z_][A-Za-z0-9_]*)\s*:", r'\1"\2":', str(text))
    try:
        value = json.loads(quoted)
    except json.JSONDecodeError as exc:
        raise ValidationError(
            f"simulator configuration {text!r} is not an object; write e.g. {{min:15, max:35}}"
        ) from exc
    if not isinstance(value, dict):
        raise ValidationError(f"simulator configuration {text!r} must be an object")
    return value


def _double(config: Mapping[str, Any]) -> float:
    low, high = float(config.get("min", 0.0)), float(config.get("max", 1.0))
    value = random.uniform(low, high)
    digits = config.get("decimals")
    return round(value, int(digits)) if digits is not None else value


def _int(config: Mapping[str, Any]) -> int:
    return random.randint(int(config.get("min", 0)), int(config.get("max", 100)))


def _sine(config: Mapping[str, Any]) -> float:
    period = float(config.get("period", 60.0))
    amplitude = float(config.get("amplitude", 1.0))
    offset = float(config.get("offset", 0.0))
    return offset + amplitude * math.sin(2 * math.pi * time.time() / period)


SIMULATORS: dict[str, Callable[[Mapping[str, Any]], Any]] = {
    "Math.DoubleRandom": _double,
    "Math.IntRandom": _int,
    "Math.Sine": _sine,
    "Math.BoolRandom": lambda _c: random.random() < 0.5,
    "Text.Lorem.Word": lambda _c: random.choice(_WORDS),
    "Text.Lorem.Sentence": lambda c: (
        " ".join(random.choice(_WORDS) for _ in range(int(c.get("words", 8)))).capitalize() + "."
    ),
    "Date.Now": lambda _c: datetime.now(UTC).isoformat(),
}


def simulate(key: str, configuration: Any) -> Any:
    """One simulated value of simulator ``key``."""
    simulator = SIMULATORS.get(key)
    if simulator is None:
        raise ValidationError(
            f"simulatorKey {key!r} is unknown; use one of: {', '.join(sorted(SIMULATORS))}"
        )
    return simulator(parse_configuration(configuration))
