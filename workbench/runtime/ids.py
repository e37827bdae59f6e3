"""Runtime entity ids: 24 hex digits, laid out like a MongoDB ObjectId (time, random, counter)."""

from __future__ import annotations

import itertools
import os
import re
import threading
import time

from workbench.errors import ValidationError

__all__ = ["new_rt_id", "validate_rt_id"]

_RT_ID = re.compile(r"^[0-9a-f]{24}$")
_PROCESS_RANDOM = os.urandom(5)
_counter = itertools.count(int.from_bytes(os.urandom(3), "big"))
_lock = threading.Lock()


def new_rt_id() -> str:
    """A new unique rtId, increasing with time within a process."""
    with _lock:
        count = next(_counter) & 0xFFFFFF
    return (int(time.time()).to_bytes(4, "big") + _PROCESS_RANDOM + count.to_bytes(3, "big")).hex()


def validate_rt_id(rt_id: object, location: str = "rtId") -> str:
    if not isinstance(rt_id, str) or not _RT_ID.fullmatch(rt_id.lower()):
        raise ValidationError(
            f"{location} {rt_id!r} is not a valid rtId: use 24 hexadecimal digits "
            "(for example 65a1b2c3d4e5f60718293a4b), or leave it out to have one generated"
        )
    return rt_id.lower()
