"""Finding the data directory and the running platform, for commands run without flags.

The data directory is ``--data-dir`` (or the ``home`` setting, ``$WORKBENCH_HOME``); without
either it is ``./.workbench`` when that exists (``make run`` keeps its data there), else
``~/.workbench``.
``workbench up`` writes ``platform.json`` into the data directory while it runs: the supervisor's
pid and the URLs of its services. A command that finds a live platform there talks to its Asset
Repository (see :func:`running_platform`) instead of opening the files another process owns.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from workbench.settings import current_settings

__all__ = [
    "PLATFORM_FILE",
    "Platform",
    "default_home",
    "remove_platform",
    "running_platform",
    "write_platform",
]

PLATFORM_FILE = "platform.json"


@dataclass(frozen=True)
class Platform:
    """A running ``workbench up``: its pid and service URLs by service name."""

    pid: int
    urls: dict[str, str]
    #: the CA bundle that verifies the services' certificate (``workbench up --tls``)
    trust: str | None = None

    @property
    def api_url(self) -> str | None:
        return self.urls.get("asset-repository")

    @property
    def identity_url(self) -> str | None:
        return self.urls.get("identity")


def default_home(explicit: Path | None = None) -> Path:
    """``explicit``, else the ``home`` setting when the environment sets it
    (``WORKBENCH_HOME``), else ``./.workbench`` if it exists, else ``~/.workbench``."""
    if explicit is not None:
        return explicit.expanduser().resolve()
    settings = current_settings()
    # set and not empty (an empty WORKBENCH_HOME counts as unset, as for click's --data-dir)
    if "home" in settings.model_fields_set and settings.home != Path():
        return settings.home.expanduser().resolve()
    local = Path.cwd() / ".workbench"
    if local.is_dir():
        return local.resolve()
    return (Path.home() / ".workbench").resolve()


def write_platform(
    home: Path, urls: dict[str, str], pid: int | None = None, trust: Path | None = None
) -> Path:
    """Record the running platform in ``home`` (replaced atomically)."""
    path = home / PLATFORM_FILE
    document: dict[str, object] = {"pid": pid or os.getpid(), "urls": urls}
    if trust is not None:
        document["trust"] = str(trust)
    partial = path.with_suffix(".json.partial")
    partial.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    partial.replace(path)
    return path


def remove_platform(home: Path, pid: int | None = None) -> None:
    """Remove ``platform.json`` if it is this process's (or ``pid``'s) record."""
    found = _read(home)
    if found is not None and found.pid == (pid or os.getpid()):
        (home / PLATFORM_FILE).unlink(missing_ok=True)


def running_platform(home: Path) -> Platform | None:
    """The platform recorded in ``home`` if its Asset Repository answers (a platform that was
    killed leaves the file behind, but its services die with it). A platform served over https
    with its own certificate makes this process trust that certificate (``SSL_CERT_FILE``)."""
    from workbench.services.up import http_ok

    found = _read(home)
    if found is not None and found.trust and not os.environ.get("SSL_CERT_FILE"):
        os.environ["SSL_CERT_FILE"] = found.trust
    if found is None or found.api_url is None or not http_ok(f"{found.api_url}/healthz"):
        return None
    return found


def _read(home: Path) -> Platform | None:
    try:
        document = json.loads((home / PLATFORM_FILE).read_text(encoding="utf-8"))
        urls = {str(k): str(v) for k, v in document["urls"].items()}
        trust = document.get("trust")
        return Platform(int(document["pid"]), urls, str(trust) if trust else None)
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None
