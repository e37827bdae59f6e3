"""``workbench streams ...``: write, read, aggregate, delete, SQL over stream data; retention."""

from __future__ import annotations

import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any

import click
from rich.console import Console

from workbench.cli.common import emit, open_tenant, wb_command
from workbench.errors import ValidationError

__all__ = ["streams"]

_tenant = click.option("--tenant", "tenant_id", required=True, help="Tenant id.")
_type = click.option(
    "--type", "ck_type_id", required=True, help="CK type id, e.g. Demo.Energy/EnergyMeter."
)
_rt_ids = click.option("--rt-id", "rt_ids", multiple=True, help="Only these entities (repeatable).")
_attributes = click.option(
    "--attribute", "attributes", multiple=True, help="Only these attributes (repeatable)."
)
_from = click.option(
    "--from", "from_", help="Start (inclusive), ISO 8601 with offset, e.g. 2026-01-01T00:00Z."
)
_to = click.option("--to", "to", help="End (exclusive), ISO 8601 with offset.")
_format = click.option(
    "--format",
    "fmt",
    type=click.Choice(["csv", "parquet", "json"]),
    help="Output format (default: from --out suffix, else csv).",
)
_out = click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write to this file (default: stdout).",
)

#: rows per page when reading from the store into a file
READ_PAGE = 1_000_000


@click.group()
def streams() -> None:
    """Stream data: time series of entity attributes, per CK type."""


def _tenant_with_streams(tenant_id: str) -> Any:
    tenant = open_tenant(tenant_id)
    # build the catalog and entity service first: Tenant.stream_service holds the tenant's
    # (non-reentrant) lock while it reads them, and their first creation takes that lock too
    tenant.entities  # noqa: B018
    return tenant


def _streams(tenant_id: str, ck_type_id: str) -> Any:
    return _tenant_with_streams(tenant_id).streams(ck_type_id)


def _local_streams(tenant_id: str) -> Any:
    """The tenant's stream service in process: retention is not offered over the API."""
    tenant = _tenant_with_streams(tenant_id)
    if not hasattr(tenant, "stream_service"):
        raise ValidationError(
            f"retention is managed on the data directory, and tenant {tenant_id} is served "
            f"remotely ({tenant.url}); run the command where the data lives, with the platform "
            "stopped"
        )
    return tenant


@wb_command(streams, "write")
@_tenant
@_type
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["csv", "parquet", "json"]),
    help="Input format (default: from the suffix).",
)
@click.option("--timezone", help="Zone of naive timestamps in the file, e.g. Europe/Vienna.")
@click.option(
    "--chunk-rows", default=500_000, show_default=True, help="Rows validated and written per chunk."
)
def write(
    *,
    tenant_id: str,
    ck_type_id: str,
    file: Path,
    fmt: str | None,
    timezone: str | None,
    chunk_rows: int,
) -> None:
    """Write the points in FILE (CSV, Parquet or NDJSON; wide form rtId,timeStamp,<attr>...).

    Each chunk is validated as a whole before it is written; a bad chunk stops the command and
    names the row (counted from the first data row, 0-based) and column."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    from workbench.streams.io import detect_format, iter_point_batches, progress_total

    kind = detect_format(file, fmt)
    target = _streams(tenant_id, ck_type_id)
    total, unit = progress_total(file, kind)
    written = 0
    started = datetime.now()
    show = not state_json() and sys.stderr.isatty()
    with Progress(
        TextColumn("writing {task.fields[name]}"),
        BarColumn(),
        TextColumn("{task.fields[points]:,} points"),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        transient=True,
        disable=not show,
    ) as bar:
        task = bar.add_task("write", total=total, name=file.name, points=0)
        offset = 0
        for chunk, done in iter_point_batches(file, kind, chunk_rows):
            try:
                written += target.write(chunk, timezone=timezone)
            except ValidationError as exc:
                raise _shift_rows(exc, offset) from None
            offset += chunk.num_rows
            bar.update(task, completed=done, points=written)
    seconds = (datetime.now() - started).total_seconds()
    summary = {
        "type": ck_type_id,
        "file": str(file),
        "points": written,
        "seconds": round(seconds, 3),
    }
    emit(summary, lambda c: c.print(f"wrote {written:,} points to {ck_type_id} in {seconds:.1f} s"))
    del unit


def _shift_rows(exc: ValidationError, offset: int) -> ValidationError:
    """The error with chunk-relative ``row N`` locations made file-relative."""
    if offset == 0:
        return exc
    from workbench.errors import ErrorDetail

    details = []
    for detail in exc.details:
        location = detail.location
        if location and location.startswith("row ") and location[4:].isdigit():
            location = f"row {int(location[4:]) + offset}"
        details.append(ErrorDetail(detail.message, location, detail.element))
    return ValidationError(exc.message, details)


def state_json() -> bool:
    from workbench.cli.common import state

    return state().as_json


def _writer(out: Path | None, fmt: str | None) -> Any:
    from workbench.streams.io import PointsWriter, detect_format

    if out is not None:
        return PointsWriter(out, detect_format(out, fmt))
    kind = fmt or "csv"
    if kind == "parquet":
        raise ValidationError("Parquet output needs a file: pass --out FILE.parquet")
    stream: IO[bytes] = sys.stdout.buffer
    return PointsWriter(None, kind, stream=stream)  # type: ignore[arg-type]


def _finish(out: Path | None, rows: int, what: str) -> None:
    if out is not None:
        emit(
            {"rows": rows, "out": str(out)}, lambda c: c.print(f"{rows:,} {what} written to {out}")
        )


@wb_command(streams, "read")
@_tenant
@_type
@_rt_ids
@_attributes
@_from
@_to
@click.option("--descending", is_flag=True, help="Newest first.")
@click.option("--limit", type=int, help="At most this many points.")
@_format
@_out
def read(
    *,
    tenant_id: str,
    ck_type_id: str,
    rt_ids: tuple[str, ...],
    attributes: tuple[str, ...],
    from_: str | None,
    to: str | None,
    descending: bool,
    limit: int | None,
    fmt: str | None,
    out: Path | None,
) -> None:
    """Read points of [--from, --to) ordered by time (paged through the store, streamed out)."""
    source = _streams(tenant_id, ck_type_id)
    after = None
    rows = 0
    with _writer(out, fmt) as sink:
        while limit is None or rows < limit:
            size = READ_PAGE if limit is None else min(READ_PAGE, limit - rows)
            page = source.read(
                from_,
                to,
                rt_ids=list(rt_ids) or None,
                attributes=list(attributes) or None,
                descending=descending,
                first=size,
                after=after,
            )
            sink.write(page.to_arrow())
            rows += len(page)
            if not page.has_next_page:
                break
            after = page.end_cursor
    _finish(out, rows, "points")


@wb_command(streams, "aggregate")
@_tenant
@_type
@_rt_ids
@_attributes
@click.option(
    "--from", "from_", help="Start (inclusive), ISO 8601 with offset (default: the first point)."
)
@click.option("--to", "to", help="End (exclusive), ISO 8601 with offset (default: after the last).")
@click.option("--interval", required=True, help="Bucket size: 1s, 15m, 1h, 1d, ...")
@click.option(
    "--fn",
    "functions",
    multiple=True,
    default=("avg",),
    show_default=True,
    help="avg, min, max, sum, count, first, last (repeatable).",
)
@_format
@_out
def aggregate(
    *,
    tenant_id: str,
    ck_type_id: str,
    rt_ids: tuple[str, ...],
    attributes: tuple[str, ...],
    from_: str | None,
    to: str | None,
    interval: str,
    functions: tuple[str, ...],
    fmt: str | None,
    out: Path | None,
) -> None:
    """Aggregates per rtId and time bucket (columns <attribute><Fn>, e.g. voltageAvg) over
    [--from, --to), by default over all the data (of the --rt-id entities)."""
    source = _streams(tenant_id, ck_type_id)
    if from_ is None or to is None:
        span = _span(source, rt_ids)
        if span is None:
            raise ValidationError(
                f"no stream data of {ck_type_id}{_of(rt_ids)} at all, so there is nothing to "
                "aggregate; write some first (workbench streams write)"
            )
        from_, to = from_ or span[0], to or span[1]
    result = source.aggregate(
        from_,
        to,
        interval,
        list(functions),
        rt_ids=list(rt_ids) or None,
        attributes=list(attributes) or None,
    )
    if len(result) == 0:
        click.echo(_no_data(source, ck_type_id, from_, to, rt_ids), err=True)
    with _writer(out, fmt) as sink:
        sink.write(result.to_arrow())
    _finish(out, len(result), "buckets")


def _of(rt_ids: tuple[str, ...]) -> str:
    return f" of {', '.join(rt_ids)}" if rt_ids else ""


def _span(source: Any, rt_ids: tuple[str, ...]) -> tuple[str, str] | None:
    """``[first point, just after the last)`` as ISO 8601, None without points."""
    selected = list(rt_ids) or None
    first = source.read(rt_ids=selected, first=1).rows()
    if not first:
        return None
    last = source.read(rt_ids=selected, descending=True, first=1).rows()
    end = last[0]["timeStamp"] + timedelta(microseconds=1)
    return _iso(first[0]["timeStamp"]), _iso(end)


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _no_data(source: Any, ck_type_id: str, from_: str, to: str, rt_ids: tuple[str, ...]) -> str:
    """What to say when a range holds no points: where the data of the type is."""
    message = f"no stream data of {ck_type_id}{_of(rt_ids)} in [{from_}, {to})"
    span = _span(source, rt_ids)
    if span is None:
        return f"{message}; it has none at all"
    return f"{message}; its data spans [{span[0]}, {span[1]})"


@wb_command(streams, "delete")
@_tenant
@_type
@_rt_ids
@_from
@_to
@click.option("--yes", is_flag=True, help="Confirm: the points are deleted for good.")
def delete(
    *,
    tenant_id: str,
    ck_type_id: str,
    rt_ids: tuple[str, ...],
    from_: str | None,
    to: str | None,
    yes: bool,
) -> None:
    """Delete the points of [--from, --to) (of --rt-id entities when given)."""
    if not yes:
        raise ValidationError("deleting stream points cannot be undone; confirm with --yes")
    deleted = _streams(tenant_id, ck_type_id).delete(from_, to, rt_ids=list(rt_ids) or None)
    emit({"type": ck_type_id, "deleted": deleted}, lambda c: c.print(f"deleted {deleted:,} points"))


@streams.group()
def retention() -> None:
    """Per-type retention policies (keep 90d), applied by `retention apply`."""


@wb_command(retention, "set")
@_tenant
@_type
@click.argument("keep", required=False)
@click.option("--clear", is_flag=True, help="Remove the policy.")
def retention_set(tenant_id: str, ck_type_id: str, keep: str | None, clear: bool) -> None:
    """Keep points of the type for KEEP (e.g. 90d); --clear removes the policy."""
    if clear == (keep is not None):
        raise ValidationError("give either KEEP (e.g. 90d) or --clear")
    stored = _local_streams(tenant_id).streams(ck_type_id).set_retention(None if clear else keep)
    emit(
        {"type": ck_type_id, "keep": stored},
        lambda c: c.print(f"{ck_type_id}: " + (f"keep {stored}" if stored else "no retention")),
    )


@wb_command(retention, "show")
@_tenant
def retention_show(tenant_id: str) -> None:
    """The retention policies of the tenant."""
    policies = _local_streams(tenant_id).stream_service.retention_policies()

    def human(console: Console) -> None:
        if not policies:
            console.print("no retention policies")
        for type_id, keep in sorted(policies.items()):
            console.print(f"{type_id}: keep {keep}")

    emit(policies, human)


@wb_command(retention, "apply")
@_tenant
@click.option("--now", help="Apply as of this instant (ISO 8601 with offset; default: now).")
def retention_apply(tenant_id: str, now: str | None) -> None:
    """Delete the points older than each policy allows."""
    at = None
    if now is not None:
        try:
            at = datetime.fromisoformat(now)
        except ValueError:
            raise ValidationError(f"--now {now!r} is not an ISO 8601 timestamp") from None
    deleted = _local_streams(tenant_id).stream_service.apply_retention(at)
    printer: Callable[[Console], None] = lambda c: c.print(  # noqa: E731
        "\n".join(f"{t}: deleted {n:,} points" for t, n in sorted(deleted.items()))
        or "no retention policies"
    )
    emit(deleted, printer)


@wb_command(streams, "sql")
@_tenant
@click.argument("query", metavar="SQL")
@_format
@_out
def sql(*, tenant_id: str, query: str, fmt: str | None, out: Path | None) -> None:
    """Run one read-only SELECT over the tenant's stream views (a view per CK type, named by
    the type id in double quotes or its short name, e.g. demo_energy__energymeter)."""
    table = _tenant_with_streams(tenant_id).streams.sql(query, to="arrow")
    with _writer(out, fmt) as sink:
        sink.write(table)
    _finish(out, table.num_rows, "rows")


def register(cli: click.Group) -> None:
    cli.add_command(streams)
