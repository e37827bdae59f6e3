"""System accounts for tenant servers on one machine, and the data directory kept from them.

When the hub runs as root, every hub user gets an unprivileged system account of their own,
created on their first spawn (as JupyterHub's ``LocalAuthenticator.create_system_users`` does,
with a configurable ``add_user_cmd`` where ``USERNAME`` is replaced). Hub names
(``alice@acme``) are not valid account names, so the account is ``wb-<12 hex digits>`` of a hash
of the hub name and a namespace (the platform's data directory: two platforms on one machine do
not share accounts); 15 characters, within useradd's 32. The account's comment (GECOS) names
the hub user, so ``getent passwd | grep 'Mesh Workbench'`` lists them.

The platform's own files stay readable by the platform's account only:
:func:`protect_data_directory` makes the data directory 0700 and its secrets 0600.
"""

from __future__ import annotations

import functools
import hashlib
import os
import pwd
import subprocess
import threading
from collections.abc import Sequence
from pathlib import Path

__all__ = [
    "ACCOUNT_COMMENT",
    "ACCOUNT_PREFIX",
    "DEFAULT_ADD_USER_CMD",
    "AccountError",
    "account_name",
    "accounts_of",
    "can_run",
    "ensure_account",
    "protect_data_directory",
    "remove_account",
]

ACCOUNT_PREFIX = "wb-"
#: the start of the GECOS field of every account created here (remove_account checks it)
ACCOUNT_COMMENT = "Mesh Workbench hub user"

#: ``useradd`` for a system account without a login shell or a home directory of its own (the
#: spawner gives it the working directory as HOME); USERNAME and COMMENT are replaced, the
#: account name is appended
DEFAULT_ADD_USER_CMD = (
    "useradd",
    "--system",
    "--user-group",
    "--no-create-home",
    "--home-dir",
    "/nonexistent",
    "--shell",
    "/usr/sbin/nologin",
    "--comment",
    "COMMENT",
)

_creating = threading.Lock()


class AccountError(RuntimeError):
    """An account could not be created or used (the message says which and how to fix it)."""


def account_name(hub_user: str, namespace: str = "") -> str:
    """``wb-<12 hex>``: the system account of ``hub_user`` (stable for the same namespace)."""
    digest = hashlib.sha256(f"{namespace}\0{hub_user}".encode()).hexdigest()
    return ACCOUNT_PREFIX + digest[:12]


def ensure_account(
    name: str, *, hub_user: str, add_user_cmd: Sequence[str] = DEFAULT_ADD_USER_CMD
) -> pwd.struct_passwd:
    """The account ``name``, created with ``add_user_cmd`` when it does not exist (needs root)."""
    with _creating:
        try:
            return pwd.getpwnam(name)
        except KeyError:
            pass
        comment = f"{ACCOUNT_COMMENT} {hub_user}"
        command = [
            part.replace("USERNAME", name).replace("COMMENT", comment) for part in add_user_cmd
        ]
        command.append(name)
        try:
            result = subprocess.run(
                command, capture_output=True, text=True, timeout=60, check=False
            )
        except (OSError, subprocess.SubprocessError) as exc:
            raise AccountError(
                f"cannot create the system account {name} for {hub_user} with {command[0]}: "
                f"{exc}; install it (Debian: passwd) or set TenantSpawner.add_user_cmd"
            ) from exc
        try:
            return pwd.getpwnam(name)
        except KeyError:
            raise AccountError(
                f"creating the system account {name} for {hub_user} failed "
                f"(exit {result.returncode}): {(result.stderr or result.stdout).strip()[:300]}; "
                "the hub must run as root to create accounts"
            ) from None


def remove_account(name: str) -> bool:
    """Delete ``name`` if it is an account :func:`ensure_account` made (True if removed)."""
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        return False
    if not name.startswith(ACCOUNT_PREFIX) or not entry.pw_gecos.startswith(ACCOUNT_COMMENT):
        raise AccountError(f"{name} is not an account of Mesh Workbench's hub: not removing it")
    subprocess.run(["userdel", name], capture_output=True, timeout=60, check=False)
    try:
        pwd.getpwnam(name)
    except KeyError:
        return True
    return False


@functools.cache
def can_run(uid: int, gid: int, python: str, modules: str = "jupyterhub.singleuser") -> bool:
    """Whether the account ``uid:gid`` can start ``python`` and import ``modules`` (probed
    once per interpreter and account in this process; needs root)."""

    def drop() -> None:
        os.setgid(gid)
        os.setgroups([])
        os.setuid(uid)

    try:
        result = subprocess.run(
            [python, "-c", f"import {modules}"],
            preexec_fn=drop,
            capture_output=True,
            timeout=120,
            cwd="/",
            env={"PATH": "/usr/bin:/bin", "HOME": "/nonexistent"},
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return False
    return result.returncode == 0


def protect_data_directory(home: Path) -> None:
    """Make the data directory ``home`` 0700 and the files in ``<home>/secrets`` 0600 (the
    folder 0700), so that only the platform's account reads databases and signing keys."""
    if not home.is_dir():
        return
    home.chmod(0o700)
    secrets = home / "secrets"
    if secrets.is_dir():
        secrets.chmod(0o700)
        for path in secrets.iterdir():
            if path.is_file() and not path.is_symlink():
                path.chmod(0o600)


def accounts_of(namespace: str) -> list[str]:
    """The accounts :func:`ensure_account` made for hub users of ``namespace`` (their comment
    names the hub user, whose hash with the namespace gives the account name)."""
    found = []
    for entry in pwd.getpwall():
        if not entry.pw_name.startswith(ACCOUNT_PREFIX):
            continue
        if not entry.pw_gecos.startswith(ACCOUNT_COMMENT + " "):
            continue
        hub_user = entry.pw_gecos[len(ACCOUNT_COMMENT) + 1 :]
        if account_name(hub_user, namespace) == entry.pw_name:
            found.append(entry.pw_name)
    return sorted(found)
