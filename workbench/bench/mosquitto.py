"""A mosquitto broker of a benchmark's own: Debian's ``/usr/sbin/mosquitto`` on a free loopback
port, anonymous, no persistence, no limit on the messages queued for a slow subscriber (the
benchmark measures the adapter, not the broker's drop policy)."""

from __future__ import annotations

import getpass
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from workbench.errors import BackendUnavailable

__all__ = ["MOSQUITTO", "mosquitto"]

MOSQUITTO = "/usr/sbin/mosquitto"


@contextmanager
def mosquitto(directory: Path) -> Iterator[tuple[int, subprocess.Popen[bytes]]]:
    """A broker listening on ``127.0.0.1:<port>``; yields ``(port, process)``."""
    from workbench.testing.http import free_port

    if not Path(MOSQUITTO).exists():
        raise BackendUnavailable(
            f"this benchmark's devices publish to mosquitto, not found at {MOSQUITTO}: "
            "apt-get install mosquitto"
        )
    port = free_port()
    config = directory / "mosquitto.conf"
    log = directory / "mosquitto.log"
    config.write_text(
        "\n".join(
            [
                f"listener {port} 127.0.0.1",
                "allow_anonymous true",
                "persistence false",
                "max_queued_messages 0",
                "max_inflight_messages 100",
                f"user {getpass.getuser()}",
                f"log_dest file {log}",
            ]
        )
        + "\n"
    )
    process = subprocess.Popen(
        [MOSQUITTO, "-c", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            if process.poll() is not None:
                raise BackendUnavailable(f"mosquitto exited: {log.read_text()[-2000:]}")
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise BackendUnavailable(f"mosquitto did not listen on {port}") from None
                time.sleep(0.05)
        yield port, process
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
