"""Throttling of repeated failed logins, per account and per client address.

After ``max_failures`` failures within ``window`` seconds a key is locked for ``lockout``
seconds, doubling with each further lockout (capped at an hour). Kept in memory: one Identity
process owns its counters, and a restart forgets them (a deliberate trade-off: no store writes
on the login hot path).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

__all__ = ["LoginThrottle"]


@dataclass
class _State:
    failures: list[float] = field(default_factory=list)
    locked_until: float = 0.0
    lockouts: int = 0


class LoginThrottle:
    def __init__(
        self, max_failures: int = 5, *, window: float = 300.0, lockout: float = 30.0
    ) -> None:
        self.max_failures = max_failures
        self.window = window
        self.lockout = lockout
        self._states: dict[str, _State] = {}
        self._lock = threading.Lock()

    def retry_after(self, *keys: str) -> float:
        """Seconds until any of ``keys`` may try again (0: go ahead)."""
        now = time.monotonic()
        with self._lock:
            waits = [self._states[k].locked_until - now for k in keys if k in self._states]
        return max([0.0, *waits])

    def failed(self, *keys: str) -> None:
        now = time.monotonic()
        with self._lock:
            for key in keys:
                state = self._states.setdefault(key, _State())
                state.failures = [t for t in state.failures if now - t < self.window] + [now]
                if len(state.failures) >= self.max_failures:
                    state.lockouts += 1
                    state.locked_until = now + min(3600.0, self.lockout * 2 ** (state.lockouts - 1))
                    state.failures.clear()
            if len(self._states) > 100_000:  # bound memory under a spray of usernames
                self._states = {
                    k: s for k, s in self._states.items() if s.locked_until > now or s.failures
                }

    def succeeded(self, key: str) -> None:
        with self._lock:
            self._states.pop(key, None)
