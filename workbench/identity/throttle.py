"""Throttling of repeated failed logins: per account and per client address, separately.

- **Accounts**: after ``max_failures`` failures within ``window`` seconds an account is locked
  for ``lockout`` seconds, doubling with each further lockout (capped at an hour). A locked
  account is refused (429) whatever the password, so guessing one account's password gets at
  most ``max_failures`` tries per lockout.
- **Addresses**: an address is throttled after ``address_max_failures`` failures (default four
  times ``max_failures``) over any accounts, which stops one client spraying guesses over many
  accounts: its wrong guesses are answered 429 until the lock ends. A throttled address never
  locks out anybody else: a correct password for an account that is not itself locked still
  gets in, so one attacker cannot lock out a whole office behind one NAT address, nor every
  user of a ``workbench up`` machine (all on loopback).

Kept in memory: one Identity process owns its counters, and a restart forgets them (a
deliberate trade-off: no store writes on the login hot path).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

__all__ = ["LoginThrottle"]

_MAX_KEYS = 100_000


@dataclass
class _State:
    failures: list[float] = field(default_factory=list)
    locked_until: float = 0.0
    lockouts: int = 0


class _Counter:
    """Failures and lockouts of one kind of key (accounts, or addresses)."""

    def __init__(self, max_failures: int, window: float, lockout: float) -> None:
        self.max_failures = max(1, max_failures)
        self.window = window
        self.lockout = lockout
        self._states: dict[str, _State] = {}

    def wait(self, key: str, now: float) -> float:
        state = self._states.get(key)
        return 0.0 if state is None else max(0.0, state.locked_until - now)

    def failed(self, key: str, now: float) -> None:
        state = self._states.setdefault(key, _State())
        state.failures = [t for t in state.failures if now - t < self.window] + [now]
        if len(state.failures) >= self.max_failures:
            state.lockouts += 1
            state.locked_until = now + min(3600.0, self.lockout * 2 ** (state.lockouts - 1))
            state.failures.clear()
        if len(self._states) > _MAX_KEYS:  # bound memory under a spray of usernames
            self._states = {
                k: s
                for k, s in self._states.items()
                if s.locked_until > now or any(now - t < self.window for t in s.failures)
            }

    def forget(self, key: str) -> None:
        self._states.pop(key, None)


class LoginThrottle:
    """Counts failed logins per account and per address (see the module documentation)."""

    def __init__(
        self,
        max_failures: int = 5,
        *,
        address_max_failures: int | None = None,
        window: float = 300.0,
        lockout: float = 30.0,
    ) -> None:
        self.max_failures = max_failures
        self.address_max_failures = address_max_failures or 4 * max_failures
        self._accounts = _Counter(max_failures, window, lockout)
        self._addresses = _Counter(self.address_max_failures, window, lockout)
        self._lock = threading.Lock()

    def account_wait(self, account: str) -> float:
        """Seconds until ``account`` may try again (0: go ahead)."""
        with self._lock:
            return self._accounts.wait(account, time.monotonic())

    def address_wait(self, address: str) -> float:
        """Seconds until wrong guesses from ``address`` are answered normally again."""
        with self._lock:
            return self._addresses.wait(address, time.monotonic())

    def failed(self, account: str, address: str) -> None:
        """Count a failed login of ``account`` from ``address``."""
        now = time.monotonic()
        with self._lock:
            self._accounts.failed(account, now)
            self._addresses.failed(address, now)

    def succeeded(self, account: str) -> None:
        """A correct login: the account's failures are forgotten (the address's are not)."""
        with self._lock:
            self._accounts.forget(account)
