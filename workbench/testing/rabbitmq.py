"""Restarting the throw-away RabbitMQ of ``.ci/rabbitmq.sh`` in a fault test.

:func:`restart_rabbitmq` stops and starts the RabbitMQ application on that node
(``rabbitmqctl stop_app`` / ``start_app``): every connection is dropped, queues go down and come
back from disk, as in a broker restart (the Erlang VM stays, so ports and data stay). It finds the
node through ``RABBITMQ_DATA_DIR`` (exported by ``.ci/rabbitmq.sh``): the node's directory under
``mnesia/`` names it, and the Erlang cookie is in that directory (the node's ``HOME``).
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from workbench.testing.servers import require_server_url

__all__ = ["restart_rabbitmq"]

_CTL = "/usr/lib/rabbitmq/bin/rabbitmqctl"


def _node(data_dir: Path) -> str:
    names = [p.name for p in (data_dir / "mnesia").iterdir() if p.is_dir() and p.name.count("@")]
    nodes = [n for n in names if "-" not in n.split("@", 1)[1]]
    if len(nodes) != 1:
        raise RuntimeError(f"cannot tell the RabbitMQ node of {data_dir}: {sorted(names)}")
    return nodes[0]


def restart_rabbitmq(timeout: float = 180.0) -> None:
    """Restart the RabbitMQ application of ``RABBITMQ_DATA_DIR`` (skip locally without it,
    fail under ``CI=true``)."""
    data_dir = Path(require_server_url("RABBITMQ_DATA_DIR", "RabbitMQ of .ci/rabbitmq.sh"))
    node = _node(data_dir)
    env = {**os.environ, "HOME": str(data_dir)}
    for action in ("stop_app", "start_app", "await_startup"):
        subprocess.run(
            [_CTL, "-n", node, action],
            env=env,
            check=True,
            capture_output=True,
            timeout=timeout,
        )
