"""The OAuth client a piece of promoted code acts with: confidential, client credentials only,
scoped to one tenant, its secret kept in a 0600 file of the data directory.

Bots (``bot.<tenant>.<name>``, :mod:`workbench.bots.credentials`) and promoted adapters
(``adapter.<tenant>.<name>``, :mod:`workbench.promotion.adapter_pool`) get theirs here: created
in the Identity directory the first time, its secret written to ``secret_file``; when the
client exists but the file is gone (a copied data directory, a deleted secret) the secret is
rotated, which also revokes the tokens issued with the old one.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any

__all__ = ["tenant_client_secret"]

_lock = threading.Lock()


def tenant_client_secret(
    workbench: Any,
    tenant_id: str,
    client_id: str,
    *,
    name: str,
    roles: Iterable[str],
    secret_file: Path,
    actor: str,
) -> str:
    """The secret of the client-credentials client ``client_id`` of ``tenant_id`` (roles
    ``roles``, scope ``workbench_api``), creating the client the first time."""
    from workbench.identity.directory import Directory
    from workbench.secret_files import read_or_create_secret

    with _lock:
        directory = Directory.for_workbench(workbench)
        exists = directory.get_client(client_id) is not None
        if exists and secret_file.is_file():
            return read_or_create_secret(secret_file)
        if not exists:
            _, created = directory.create_client(
                tenant_id,
                client_id,
                name=name,
                grant_types=["client_credentials"],
                scopes=["workbench_api"],
                roles=sorted(set(roles)),
                actor=actor,
            )
            secret = str(created)
        else:
            secret = directory.rotate_client_secret(client_id, actor=actor)
        secret_file.unlink(missing_ok=True)
        return read_or_create_secret(secret_file, lambda: secret)
