"""What the background test servers (``ServiceServer``, ``Mailbox``) share: ``start()`` and
``stop()``, and a ``with`` block that does both."""

from __future__ import annotations

from typing import Self

__all__ = ["BackgroundServer"]


class BackgroundServer:
    """A server a test runs in the background; subclasses define ``start`` and ``stop``."""

    def start(self) -> Self:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
