"""Shared CLI plumbing: options every command accepts, output, error handling.

Every leaf command takes ``--data-dir`` and ``--json`` (also accepted before the sub-command).
Human output goes through rich; ``--json`` prints one JSON document on stdout. A
:class:`~workbench.errors.WorkbenchError` exits with status 1 and its message on stderr; usage
errors exit with 2 (click's convention).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import click
from rich.console import Console
from rich.text import Text

from workbench.errors import WorkbenchError

__all__ = [
    "CliState",
    "WorkbenchGroup",
    "emit",
    "open_tenant",
    "open_wb",
    "report_error",
    "state",
    "wb_command",
]

F = TypeVar("F", bound=Callable[..., Any])

console = Console()
err_console = Console(stderr=True)


@dataclass
class CliState:
    data_dir: Path | None = None
    as_json: bool = False
    _workbench: Any = field(default=None, repr=False)

    def close(self) -> None:
        if self._workbench is not None:
            self._workbench.close()
            self._workbench = None


def state() -> CliState:
    ctx = click.get_current_context()
    root = ctx.find_root()
    if root.obj is None:
        root.obj = CliState()
        root.call_on_close(root.obj.close)
    assert isinstance(root.obj, CliState)
    return root.obj


def _set_data_dir(_: click.Context, __: click.Parameter, value: Path | None) -> None:
    if value is not None:
        state().data_dir = value


def _set_json(_: click.Context, __: click.Parameter, value: bool) -> None:
    if value:
        state().as_json = True


data_dir_option = click.option(
    "--data-dir",
    type=click.Path(path_type=Path, file_okay=False),
    envvar="WORKBENCH_HOME",
    expose_value=False,
    callback=_set_data_dir,
    is_eager=True,
    help="Data directory (default: $WORKBENCH_HOME or ~/.workbench).",
)
json_option = click.option(
    "--json",
    "as_json",
    is_flag=True,
    expose_value=False,
    callback=_set_json,
    help="Print machine-readable JSON on stdout.",
)


def wb_command(group: click.Group, name: str | None = None, **kwargs: Any) -> Callable[[F], F]:
    """Register a leaf command on ``group`` with the shared ``--data-dir``/``--json`` options."""

    def decorate(func: F) -> F:
        wrapped = data_dir_option(json_option(func))
        group.command(name, **kwargs)(wrapped)
        return func

    return decorate


def open_wb() -> Any:
    """The workbench for the chosen data directory (opened once per invocation)."""
    current = state()
    if current._workbench is None:
        from workbench.client.local import open_workbench

        current._workbench = open_workbench(current.data_dir)
    return current._workbench


def open_tenant(tenant_id: str) -> Any:
    return open_wb().tenant(tenant_id)


def emit(data: Any, human: Callable[[Console], None] | None = None) -> None:
    """Print ``data`` as JSON under ``--json``, else call ``human`` (or pretty-print data)."""
    if state().as_json or human is None:
        click.echo(json.dumps(data, indent=2, default=str, ensure_ascii=False))
    else:
        human(console)


def report_error(exc: BaseException) -> None:
    """Print ``error: <message>`` on stderr (no markup interpretation of the message)."""
    err_console.print(Text.assemble(("error: ", "bold red"), str(exc)), soft_wrap=True)


class WorkbenchGroup(click.Group):
    """A click group that turns WorkbenchError into a one-line message and exit status 1."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except WorkbenchError as exc:
            report_error(exc)
            sys.exit(1)
