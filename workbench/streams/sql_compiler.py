"""The checker and rewriter behind :mod:`workbench.streams.sql`: which statements run, how view
references become subqueries over the tenant's tables, and the limits on results.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pyarrow as pa

from workbench.errors import ValidationError
from workbench.storage.base import STREAM_KEY_COLUMNS, StreamTable
from workbench.streams.points import output_name

if TYPE_CHECKING:
    import sqlglot.expressions as exp

    from workbench.settings import Settings

__all__ = [
    "SqlLimits",
    "SqlRefused",
    "StreamView",
    "check_result",
    "compile_stream_sql",
    "stream_views",
]


class SqlRefused(ValidationError):
    """The statement is not a read-only query over the tenant's stream views."""


@dataclass(frozen=True)
class SqlLimits:
    """Per-statement limits of user SQL."""

    timeout_s: float = 30.0
    max_rows: int = 100_000
    max_bytes: int = 64 * 2**20

    @classmethod
    def from_settings(cls, settings: Settings) -> SqlLimits:
        return cls(
            timeout_s=float(getattr(settings, "streams_sql_timeout_s", cls.timeout_s)),
            max_rows=int(getattr(settings, "streams_sql_max_rows", cls.max_rows)),
            max_bytes=int(getattr(settings, "streams_sql_max_bytes", cls.max_bytes)),
        )


@dataclass(frozen=True)
class StreamView:
    """A readable view: its name (the CK type id), the short name, the physical table and the
    ``(stored column, API column)`` pairs."""

    name: str
    short_name: str
    physical_name: str
    columns: tuple[tuple[str, str], ...]


def stream_views(tables: Iterable[StreamTable]) -> dict[str, StreamView]:
    """The views of ``tables`` by lower-cased name and short name."""
    views: dict[str, StreamView] = {}
    for table in tables:
        stored = [*STREAM_KEY_COLUMNS, *(c.name for c in table.columns)]
        view = StreamView(
            table.name,
            table.physical_name.removeprefix("ts_"),
            table.physical_name,
            tuple((c, output_name(c)) for c in stored),
        )
        views[view.name.lower()] = view
        views[view.short_name.lower()] = view
    return views


#: statement kinds refused by name (anything that is not a query is refused anyway)
_WRITE_NODES = (
    "Alter",
    "Attach",
    "Command",
    "Copy",
    "Create",
    "Delete",
    "Detach",
    "Drop",
    "Export",
    "Insert",
    "Install",
    "LoadData",
    "Merge",
    "Pragma",
    "Set",
    "Transaction",
    "Update",
    "Use",
)
#: function names (lower case) that read files, settings, catalogs, other databases or the
#: network, or load extensions; refused wherever they appear
_DENIED_FUNCTION = re.compile(
    r"(^read_|_scan$|^scan_|^glob$|^sniff_|^parquet_|^query(_table)?$|^getenv$|^current_setting$"
    r"|^duckdb_|^pragma_|^sqlite_|^postgres_|^mysql_|^iceberg_|^delta_|^http|^s3|^load|^install"
    r"|^attach|^which_secret$|^current_(database|schema|catalog)s?$|^copy|^export|^import"
    r"|^sys_|^pg_|^has_.*_privilege$|^txid|^nextval$|^setval$|^currval$)"
)


def _refuse(message: str) -> SqlRefused:
    return SqlRefused(f"{message}; SQL over stream data runs read-only queries on the stream views")


def _function_name(node: exp.Func) -> str:
    import sqlglot.expressions as exp

    if isinstance(node, exp.Anonymous):
        return str(node.name).lower()
    return str(node.sql_name()).lower()


def compile_stream_sql(
    sql: str,
    views: Mapping[str, StreamView],
    *,
    dialect: str = "duckdb",
    schema: str | None = None,
) -> str:
    """``sql`` checked (see the module docstring) and rewritten onto the physical tables (in
    ``schema`` when given); SqlRefused names what is not allowed."""
    import sqlglot
    import sqlglot.errors
    import sqlglot.expressions as exp

    if not isinstance(sql, str) or not sql.strip():
        raise SqlRefused("the SQL statement is empty; write a SELECT over a stream view")
    try:
        statements = [s for s in sqlglot.parse(sql, read=dialect) if s is not None]
    except sqlglot.errors.ParseError as exc:
        raise SqlRefused(f"cannot parse the SQL statement: {exc}") from None
    if len(statements) != 1:
        raise _refuse(f"send exactly one statement, got {len(statements)}")
    root = statements[0]
    if not isinstance(root, exp.Query):
        kind = str(root.this if isinstance(root, exp.Command) else root.key).upper()
        raise _refuse(f"{kind} is not allowed: only queries (SELECT, WITH ... SELECT) are")
    ctes = {str(cte.alias_or_name).lower() for cte in root.find_all(exp.CTE)}
    for node in root.walk():
        name = type(node).__name__
        if name in _WRITE_NODES:
            raise _refuse(f"{name.upper()} is not allowed inside a query")
        if isinstance(node, exp.Func) and not isinstance(node, exp.AggFunc | exp.Window):
            function = _function_name(node)
            if _DENIED_FUNCTION.search(function):
                raise _refuse(f"the function {function}() is not allowed (it reaches outside)")
    replacements: list[tuple[exp.Table, exp.Expression]] = []
    for table in root.find_all(exp.Table):
        if not isinstance(table.this, exp.Identifier):
            raise _refuse(
                f"{table.this.sql(dialect=dialect)} is a table function; read the stream views"
            )
        if table.args.get("db") is not None or table.args.get("catalog") is not None:
            raise _refuse(
                f"{table.sql(dialect=dialect)} names a schema or database; name the view alone"
            )
        name = str(table.name)
        if name.lower() in ctes:
            continue
        view = views.get(name.lower())
        if view is None:
            known = sorted({v.name for v in views.values()})
            raise _refuse(
                f"there is no stream view {name!r}; views: {', '.join(known) or 'none yet'}"
            )
        replacements.append((table, _view_subquery(view, table, schema)))
    for table, subquery in replacements:
        table.replace(subquery)
    out: str = root.sql(dialect=dialect)
    return out


def _view_subquery(view: StreamView, table: exp.Table, schema: str | None) -> exp.Expression:
    import sqlglot.expressions as exp

    columns = [
        exp.alias_(exp.column(stored, quoted=True), api, quoted=True)
        for stored, api in view.columns
    ]
    source = exp.Table(
        this=exp.to_identifier(view.physical_name, quoted=True),
        db=exp.to_identifier(schema, quoted=True) if schema else None,
    )
    alias = table.alias or table.name
    return exp.select(*columns).from_(source).subquery(exp.to_identifier(alias, quoted=True))


def check_result(table: pa.Table, limits: SqlLimits) -> pa.Table:
    if table.num_rows > limits.max_rows:
        raise SqlRefused(
            f"the result has more than {limits.max_rows} rows (the limit per statement); "
            "aggregate, filter or add LIMIT"
        )
    if table.nbytes > limits.max_bytes:
        raise SqlRefused(
            f"the result is larger than {limits.max_bytes} bytes (the limit per statement); "
            "select fewer columns or rows"
        )
    return table
