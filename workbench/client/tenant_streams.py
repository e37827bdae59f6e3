"""``t.streams``: ``t.streams("Demo.Energy/EnergyMeter")`` for one CK type's stream data, and
``t.streams.sql("SELECT ...")`` for read-only SQL over all of the tenant's stream views."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Generic, Literal, TypeVar

import pyarrow as pa

__all__ = ["TenantStreams"]

T = TypeVar("T")


class TenantStreams(Generic[T]):
    """Callable for one type's streams; :meth:`sql` for SQL (see :mod:`workbench.streams.sql`)."""

    def __init__(self, for_type: Callable[[str], T], sql: Callable[[str], pa.Table]) -> None:
        self._for_type = for_type
        self._sql = sql

    def __call__(self, ck_type_id: str) -> T:
        """Stream data of one CK type: ``write``, ``read``, ``aggregate``, ``downsample``."""
        return self._for_type(ck_type_id)

    def sql(self, query: str, *, to: Literal["pandas", "arrow"] = "pandas") -> Any:
        """Run a read-only SQL query over the stream views (one per CK type, named by the type
        id or its short name, with the API's column names); a DataFrame, or Arrow with
        ``to="arrow"``. Refused statements raise ValidationError naming the reason."""
        table = self._sql(query)
        return table if to == "arrow" else table.to_pandas()
