"""Shared CLI plumbing: options every command accepts, output, error handling.

Every leaf command takes ``--data-dir``, ``--url`` and ``--json`` (also accepted before the
sub-command). The data directory defaults to ``./.workbench`` when it exists, else
``~/.workbench`` (:func:`workbench.cli.platform.default_home`). Tenant commands (``ck``, ``rt``,
``streams``) go through the Asset Repository at ``--url`` (``$WORKBENCH_API_URL``) or, without
one, through the platform ``workbench up`` runs on the data directory; otherwise they open the
data directory in process.
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
    "remote_url",
    "report_error",
    "state",
    "wb_command",
]

F = TypeVar("F", bound=Callable[..., Any])

# soft_wrap: a message is one line however narrow the terminal (scripts grep it); tables
# still fit the width
console = Console(soft_wrap=True)
err_console = Console(stderr=True, soft_wrap=True)


@dataclass
class CliState:
    data_dir: Path | None = None
    url: str | None = None
    as_json: bool = False
    _workbench: Any = field(default=None, repr=False)
    _remotes: list[Any] = field(default_factory=list, repr=False)

    def close(self) -> None:
        while self._remotes:
            self._remotes.pop().close()
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


def _set_url(_: click.Context, __: click.Parameter, value: str | None) -> None:
    if value:
        state().url = value.rstrip("/")


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
    help="Data directory (default: $WORKBENCH_HOME, else ./.workbench if it exists, else "
    "~/.workbench).",
)
url_option = click.option(
    "--url",
    envvar="WORKBENCH_API_URL",
    expose_value=False,
    callback=_set_url,
    is_eager=True,
    help="Asset Repository URL: work remotely (default: the platform running on the data "
    "directory, if any). Log in first with `workbench login`.",
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
        wrapped = data_dir_option(url_option(json_option(func)))
        group.command(name, **kwargs)(wrapped)
        return func

    return decorate


def open_wb() -> Any:
    """The workbench for the chosen data directory (opened once per invocation)."""
    current = state()
    if current._workbench is None:
        from workbench.cli.platform import default_home
        from workbench.client.local import open_workbench

        current._workbench = open_workbench(default_home(current.data_dir))
        _publish_entity_events(current._workbench)
    return current._workbench


def _publish_entity_events(workbench: Any) -> None:
    """Entity writes of this command reach the platform's bus (GraphQL subscriptions of the
    running services see them): WORKBENCH_BUS_URL, else the data directory's embedded log."""
    from workbench.messaging.tenants import TenantBuses
    from workbench.settings import Settings

    settings = Settings().model_copy(update={"home": workbench.home})
    if settings.bus_url.strip().startswith("memory:"):
        return  # an in-process bus reaches no one beyond this command
    from workbench.messaging.registry import settings_bus_url

    workbench.publish_events_to(TenantBuses(settings_bus_url(settings)))


def remote_url() -> str | None:
    """``--url`` / ``$WORKBENCH_API_URL``, else the Asset Repository of the platform running on
    the data directory, else None (work in process)."""
    current = state()
    if current.url:
        return current.url
    from workbench.cli.platform import default_home, running_platform

    found = running_platform(default_home(current.data_dir))
    return None if found is None else found.api_url


def open_tenant(tenant_id: str) -> Any:
    """The tenant: remote (see :func:`remote_url`) or in process."""
    url = remote_url()
    if url is None:
        return open_wb().tenant(tenant_id)
    from workbench.cli.credentials import access_token
    from workbench.client.remote import RemoteTenant

    token = access_token(url)
    if token is None:
        from workbench.errors import Unauthenticated

        raise Unauthenticated(
            f"tenant {tenant_id} is served by the Asset Repository at {url}: log in first "
            "with `workbench login` (or set WORKBENCH_API_TOKEN)"
        )
    tenant = RemoteTenant(url, tenant_id, token=token)
    state()._remotes.append(tenant)
    return tenant


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
