"""Structured logging: ``key=value`` text for people, one JSON object per line for collectors."""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime

from workbench.settings import Settings

__all__ = ["JsonFormatter", "configure_logging"]


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time, level, logger, message and any ``extra`` fields."""

    _standard = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime"}

    def format(self, record: logging.LogRecord) -> str:
        payload = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        payload.update({k: v for k, v in vars(record).items() if k not in self._standard})
        if record.exc_info:
            payload["exception"] = self.formatException(record.exc_info)
        return json.dumps(payload, default=str)


def configure_logging(level: int = logging.INFO, fmt: str | None = None) -> None:
    """Send ``workbench`` logs to stderr as text or JSON (``WORKBENCH_LOG_FORMAT=json``)."""
    fmt = fmt or Settings().log_format
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger("workbench")
    root.handlers[:] = [handler]
    root.setLevel(level)
    root.propagate = False
