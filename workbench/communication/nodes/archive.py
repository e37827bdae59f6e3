"""``SaveTimeRangeStreamDataInArchive@1``: the stream points of a time range, read through the
stream service, saved as a stream archive on the adapter's machine.

The archive is the platform's stream archive format (what the ``stream-export`` bot writes and
``stream-import`` and tenant restore read back: :func:`workbench.bots.builtin.transfer.
export_streams`): a folder holding ``streams/<CK type with / as __>.parquet`` per type and
``streams.json`` (tenant, range, point counts). Archives go under the adapter's archive root,
``WORKBENCH_ADAPTER_ARCHIVE_DIR`` (default ``./archives`` of the adapter's working directory); a
pipeline names only a folder inside it, so a definition cannot write elsewhere on the machine.
"""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path, PurePosixPath
from typing import Any, ClassVar

from workbench.communication.datacontext import DataContext
from workbench.communication.node import ExecutionEnvironment, Node
from workbench.settings import Settings, current_settings

__all__ = ["ARCHIVE_DIR_ENV", "NODES", "archive_root"]

#: the setting naming the folder archives are written under (Settings.adapter_archive_dir)
ARCHIVE_DIR_ENV = "WORKBENCH_ADAPTER_ARCHIVE_DIR"
_PATH = {"type": "string", "description": "a JSONPath ($.a.b)"}
_RT_ID = {"type": "string", "pattern": "^[0-9a-f]{24}$"}
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def archive_root(settings: Settings | None = None) -> Path:
    """The adapter's archive root (the ``adapter_archive_dir`` setting,
    ``WORKBENCH_ADAPTER_ARCHIVE_DIR``; default ``./archives``)."""
    folder = (settings or current_settings()).adapter_archive_dir.strip()
    return Path(folder or "archives").resolve()


def _stamp(value: Any) -> str:
    text = value.isoformat() if isinstance(value, datetime) else str(value)
    return _UNSAFE.sub("", text.replace(":", ""))


class SaveTimeRangeStreamDataInArchive(Node):
    """Reads the stream points of ``ckTypeId`` (one type or a list) in ``[from, to)`` (given or
    at ``fromPath``/``toPath``; of the ``rtIds``/those at ``rtIdPath``, else all entities)
    through the stream service and saves them as a stream archive (Parquet per type plus
    ``streams.json``) in ``archiveName`` under the adapter's archive root; ``targetPath``
    receives ``{archive, from, to, points}``."""

    type_name = "SaveTimeRangeStreamDataInArchive@1"
    properties: ClassVar[dict[str, Any]] = {
        "ckTypeId": {
            "type": ["string", "array"],
            "items": {"type": "string"},
            "minItems": 1,
            "description": "the CK type(s) whose stream points are archived",
        },
        "rtIds": {"type": "array", "items": _RT_ID},
        "rtIdPath": _PATH,
        "from": {"type": "string", "description": "start of the range (ISO 8601, included)"},
        "fromPath": _PATH,
        "to": {"type": "string", "description": "end of the range (ISO 8601, excluded)"},
        "toPath": _PATH,
        "archiveName": {
            "type": "string",
            "pattern": r"^[A-Za-z0-9._-]+(/[A-Za-z0-9._-]+)*$",
            "description": "folder of the archive under the adapter's archive root "
            "(default: streams-<from>-<to>); an archive of that name is overwritten",
        },
    }
    required = ("ckTypeId",)

    def _bound(self, context: DataContext, key: str) -> Any:
        value = (
            context.get(self.prop(f"{key}Path")) if f"{key}Path" in self.props else self.prop(key)
        )
        if value in (None, ""):
            raise self.error(
                f"the time range needs its {key!r}: give {key} or {key}Path (ISO 8601)", key
            )
        return value

    def _folder(self, start: Any, end: Any) -> Path:
        name = self.prop("archiveName") or f"streams-{_stamp(start)}-{_stamp(end)}"
        parts = PurePosixPath(str(name)).parts
        if not parts or any(p in ("", ".", "..") for p in parts):
            raise self.error(
                f"{name!r} is not a folder name inside the archive root; use names of letters, "
                "digits, '.', '_' and '-' separated by '/'",
                "archiveName",
            )
        return archive_root().joinpath(*parts)

    async def run(self, context: DataContext, env: ExecutionEnvironment) -> None:
        from workbench.bots.builtin.transfer import export_streams

        tenant = env.require_tenant(self)
        start, end = self._bound(context, "from"), self._bound(context, "to")
        given = self.prop("ckTypeId")
        ck_types = [given] if isinstance(given, str) else [str(t) for t in given]
        rt_ids: list[str] | None = None
        if "rtIds" in self.props or "rtIdPath" in self.props:
            rt_ids = [str(r) for r in self.prop("rtIds") or []]
            if "rtIdPath" in self.props:
                found = context.get(self.prop("rtIdPath"))
                rt_ids += [str(r) for r in (found if isinstance(found, list) else [found]) if r]
        folder = self._folder(start, end)
        counts = await env.call(
            export_streams, tenant, folder, ck_types, from_=start, to=end, rt_ids=rt_ids
        )
        env.log.info(
            "archived %s stream points of %s in %s",
            sum(counts.values()),
            ", ".join(ck_types),
            folder,
            extra={"pipeline": env.pipeline_name},
        )
        if "targetPath" in self.props:
            self.write(
                context, {"archive": str(folder), "from": start, "to": end, "points": counts}
            )


NODES = [SaveTimeRangeStreamDataInArchive]
