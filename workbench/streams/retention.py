"""Per-type retention: "keep 90d" stored in the stream store's metadata, applied on request.

A policy is kept in the stream store itself (namespace ``retention``, key = CK type id), so it
travels with the data. :func:`apply_retention` deletes, for every type with a policy, the points
older than ``now - keep``; nothing runs by itself (``workbench streams retention apply`` or a
scheduled bot calls it).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from workbench.errors import ValidationError
from workbench.storage.base import StreamStore
from workbench.streams.intervals import format_interval, parse_interval

__all__ = ["RetentionPolicy", "apply_retention", "get_policy", "list_policies", "set_policy"]

NAMESPACE = "retention"


@dataclass(frozen=True)
class RetentionPolicy:
    """Keep the points of ``ck_type_id`` younger than ``keep`` (a duration such as ``90d``)."""

    ck_type_id: str
    keep: str

    @property
    def keep_us(self) -> int:
        return parse_interval(self.keep)

    def cutoff(self, now: datetime) -> datetime:
        """Points with timestamps before this instant are deleted."""
        return now - timedelta(microseconds=self.keep_us)


def set_policy(store: StreamStore, ck_type_id: str, keep: str | None) -> RetentionPolicy | None:
    """Set (or with ``None`` remove) the policy of ``ck_type_id``; ``keep`` is normalised."""
    if keep is None:
        store.put_meta(NAMESPACE, ck_type_id, None)
        return None
    policy = RetentionPolicy(ck_type_id, format_interval(parse_interval(keep)))
    store.put_meta(NAMESPACE, ck_type_id, {"keep": policy.keep})
    return policy


def get_policy(store: StreamStore, ck_type_id: str) -> RetentionPolicy | None:
    document = store.get_meta(NAMESPACE, ck_type_id)
    return None if document is None else RetentionPolicy(ck_type_id, str(document["keep"]))


def list_policies(store: StreamStore) -> list[RetentionPolicy]:
    return [RetentionPolicy(k, str(d["keep"])) for k, d in store.list_meta(NAMESPACE).items()]


def apply_retention(store: StreamStore, now: datetime | None = None) -> dict[str, int]:
    """Delete the points older than each policy allows; returns deleted counts by type id."""
    if now is None:
        now = datetime.now(UTC)
    elif now.tzinfo is None:
        raise ValidationError("retention 'now' must be timezone-aware (UTC)")
    return {
        policy.ck_type_id: store.delete(policy.ck_type_id, None, policy.cutoff(now))
        for policy in list_policies(store)
    }
