"""Cross-process wake-ups for the SQLite event log: one Unix datagram socket per listener.

Every process tailing a log binds a socket in a directory derived from the log's path; a
publisher, after committing, sends one byte to each socket there, so tails read new messages
within a fraction of a millisecond instead of waiting for their next poll. Wake-ups are only a
hint: a lost one (full buffer, a socket created meanwhile) is covered by the tail's regular poll.
Sockets of dead processes refuse the datagram and are removed. The directory lives under the
temporary directory (Unix socket paths are limited to ~100 bytes), private to the user.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import secrets
import socket
import tempfile
from pathlib import Path

__all__ = ["WakeListener", "wake_all", "wake_dir"]


def wake_dir(log_path: Path) -> Path:
    """The socket directory of the log at ``log_path`` (listeners create it, mode 0700)."""
    digest = hashlib.sha1(str(log_path.resolve()).encode(), usedforsecurity=False).hexdigest()
    return Path(tempfile.gettempdir()) / f"wb-bus-{os.getuid()}" / digest[:16]


def wake_all(directory: Path, sender: socket.socket) -> None:
    """Send a wake-up to every listener in ``directory`` (never blocks)."""
    try:
        names = os.listdir(directory)
    except FileNotFoundError:
        return
    for name in names:
        if not name.endswith(".sock"):
            continue
        target = str(directory / name)
        try:
            sender.sendto(b"w", target)
        except (ConnectionRefusedError, FileNotFoundError):
            with contextlib.suppress(OSError):
                os.unlink(target)  # its process is gone
        except (BlockingIOError, OSError):
            pass  # its buffer is full: it has wake-ups pending already


def new_sender() -> socket.socket:
    sender = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sender.setblocking(False)
    return sender


class WakeListener:
    """A socket on one event loop; :meth:`wait` returns at the next wake-up or after a timeout."""

    def __init__(self, directory: Path, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.path = directory / f"{os.getpid()}-{secrets.token_hex(4)}.sock"
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._sock.setblocking(False)
        for attempt in range(3):
            directory.mkdir(parents=True, exist_ok=True, mode=0o700)
            try:
                self._sock.bind(str(self.path))
                break
            except FileNotFoundError:  # another process removed the empty directory meanwhile
                if attempt == 2:
                    raise
        self._waiters: list[asyncio.Future[None]] = []
        loop.add_reader(self._sock.fileno(), self._readable)

    def _readable(self) -> None:
        with contextlib.suppress(BlockingIOError, OSError):
            while self._sock.recv(64):
                pass
        self.wake()

    def wake(self) -> None:
        """Release every waiter (call on the listener's loop)."""
        waiters, self._waiters = self._waiters, []
        if self.loop.is_closed():
            return
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    async def wait(self, timeout: float) -> None:
        waiter = self.loop.create_future()
        self._waiters.append(waiter)
        try:
            await asyncio.wait_for(waiter, timeout)
        except TimeoutError:
            pass
        finally:
            if waiter in self._waiters:
                self._waiters.remove(waiter)

    def close(self) -> None:
        if not self.loop.is_closed() and self._sock.fileno() >= 0:
            self.loop.remove_reader(self._sock.fileno())
        self._sock.close()
        with contextlib.suppress(OSError):
            os.unlink(self.path)
        with contextlib.suppress(OSError):
            self.path.parent.rmdir()  # the last listener of this log leaves no directory
        self.wake()
