"""pymongo exceptions of the MongoDB entity store translated into :mod:`workbench.errors`."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlsplit, urlunsplit

from bson.errors import InvalidDocument
from pymongo import MongoClient
from pymongo.errors import (
    BulkWriteError,
    ConnectionFailure,
    DuplicateKeyError,
    OperationFailure,
    PyMongoError,
    ServerSelectionTimeoutError,
    WriteError,
)

from workbench.errors import (
    BackendUnavailable,
    Conflict,
    ValidationError,
    WorkbenchError,
)
from workbench.storage.mongo_codec import (
    Document,
)


def _scrub_url(url: str) -> str:
    """``url`` without the password (what errors and ``store.url`` show)."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    userinfo, hosts = parts.netloc.rsplit("@", 1)
    user = userinfo.split(":", 1)[0]
    return urlunsplit(parts._replace(netloc=f"{user}:***@{hosts}"))


_AUTH_CODES = frozenset({13, 18})


@contextmanager
def _translate_errors(url: str, client: MongoClient[Document], action: str) -> Iterator[None]:
    """Translate pymongo exceptions raised while doing ``action`` into workbench errors."""
    try:
        yield
    except WorkbenchError:
        raise
    except DuplicateKeyError as exc:
        raise Conflict(
            f"{action} in MongoDB at {url} hit a unique index: "
            f"{(exc.details or {}).get('errmsg', exc)}"
        ) from exc
    except BulkWriteError as exc:
        errors = exc.details.get("writeErrors", [])
        if any(error.get("code") == 11000 for error in errors):
            raise Conflict(
                f"{action} in MongoDB at {url} hit a unique index: {errors[0].get('errmsg')}"
            ) from exc
        raise WorkbenchError(f"{action} in MongoDB at {url} failed: {errors}") from exc
    except ServerSelectionTimeoutError as exc:
        seconds = client.options.server_selection_timeout
        raise BackendUnavailable(
            f"MongoDB at {url} did not answer within {seconds:g} s while {action}; "
            "check that the server runs and that host and port in the URL are right"
        ) from exc
    except ConnectionFailure as exc:
        raise BackendUnavailable(
            f"lost the connection to MongoDB at {url} while {action} ({exc}); retry "
            "when the server is reachable again"
        ) from exc
    except OperationFailure as exc:
        message = (exc.details or {}).get("errmsg", str(exc))
        if exc.code in _AUTH_CODES:
            raise BackendUnavailable(
                f"MongoDB at {url} refused {action}: {message}; check the user and "
                "password in the URL and the user's roles on the database"
            ) from exc
        if isinstance(exc, WriteError):
            raise ValidationError(
                f"MongoDB at {url} rejected a document while {action}: {message}"
            ) from exc
        raise WorkbenchError(f"MongoDB at {url} failed {action}: {message}") from exc
    except (InvalidDocument, OverflowError) as exc:
        raise ValidationError(
            f"a value cannot be stored in MongoDB while {action}: {exc}; values must be "
            "JSON-like (str, int within 64 bits, float, bool, None, list, dict) or datetimes"
        ) from exc
    except PyMongoError as exc:
        raise WorkbenchError(f"MongoDB at {url} failed {action}: {exc}") from exc
