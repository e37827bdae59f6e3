"""``t.queries``: the tenant's persisted queries (``System/SimpleRtQuery``,
``System/StreamDataQuery``), run by rtId or name: ``t.queries.run("Faulty meters")``."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["TenantQueries"]

#: GraphQL the remote client runs (the in-process one calls the runtime directly)
RUN_QUERY = """
query($rtId: String!, $first: Int, $after: String, $from: DateTime, $to: DateTime,
      $limit: Int) {
  runtime { runQuery(rtId: $rtId, first: $first, after: $after, from: $from, to: $to,
                     limit: $limit) { columns rows } } }
"""


class TenantQueries:
    """Runs persisted queries; ``run`` returns a DataFrame with the query's columns."""

    def __init__(self, run: Callable[..., tuple[list[str], list[dict[str, Any]]]]) -> None:
        self._run = run

    def run(
        self,
        name_or_rt_id: str,
        *,
        first: int | None = None,
        after: str | None = None,
        from_: Any = None,
        to: Any = None,
        limit: int | None = None,
    ) -> pd.DataFrame:
        """Run the persisted query with this rtId or name (overrides: page, range, limit)."""
        import pandas as pd

        columns, rows = self._run(
            name_or_rt_id, first=first, after=after, from_=from_, to=to, limit=limit
        )
        return pd.DataFrame.from_records(rows, columns=columns)


def remote_runner(graphql: Callable[..., Any]) -> Callable[..., tuple[list[str], list[Any]]]:
    """A ``run`` for :class:`TenantQueries` over a remote tenant's ``graphql(..., raw=True)``."""

    def run(name_or_rt_id: str, **overrides: Any) -> tuple[list[str], list[Any]]:
        variables = {
            "rtId": name_or_rt_id,
            "first": overrides.get("first"),
            "after": overrides.get("after"),
            "from": _text(overrides.get("from_")),
            "to": _text(overrides.get("to")),
            "limit": overrides.get("limit"),
        }
        data = graphql(RUN_QUERY, variables, raw=True)["runtime"]["runQuery"]
        return list(data["columns"]), list(data["rows"])

    return run


def _text(value: Any) -> Any:
    return value.isoformat() if hasattr(value, "isoformat") else value
