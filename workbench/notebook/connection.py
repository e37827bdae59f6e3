"""What a notebook's ``wb`` is bound to: one tenant, reached remotely or in this process.

:func:`connect_from_environment` reads the variables a tenant kernel gets from its kernel spec or
the hub's spawner: ``WORKBENCH_TENANT`` (required), ``WORKBENCH_API_URL`` (remote client through
the Asset Repository, token from ``WORKBENCH_API_TOKEN``) or else ``WORKBENCH_HOME`` (the data
directory opened in this process).
"""

from __future__ import annotations

import getpass
import html
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from workbench.errors import (
    ErrorDetail,
    ValidationError,
    WorkbenchError,
    error_class,
)

if TYPE_CHECKING:
    from graphql import GraphQLError

    from workbench.client.local import Workbench
    from workbench.graphql import SchemaCache

__all__ = ["NotebookConnection", "connect_from_environment", "graphql_error"]

TENANT_VARIABLE = "WORKBENCH_TENANT"
API_URL_VARIABLE = "WORKBENCH_API_URL"
HOME_VARIABLE = "WORKBENCH_HOME"
USER_VARIABLES = ("WORKBENCH_USER", "JUPYTERHUB_USER")


@dataclass
class NotebookConnection:
    """The tenant a notebook works on: ``client`` is what the notebook sees as ``wb``.

    ``client`` is a :class:`~workbench.client.local.Tenant` (``mode="in-process"``, ``server`` is
    the data directory) or a :class:`~workbench.client.remote.RemoteTenant` (``mode="remote"``,
    ``server`` is the Asset Repository URL); both have ``ck``, ``entities``, ``streams(type)``.
    """

    tenant: str
    user: str
    server: str
    mode: Literal["remote", "in-process"]
    client: Any
    workbench: Workbench | None = field(default=None, repr=False)
    _schemas: SchemaCache | None = field(default=None, repr=False)

    def graphql(self, query: str, variables: Mapping[str, Any] | None = None) -> Any:
        """Run ``query`` on the tenant's GraphQL API; returns the response's ``data``.

        GraphQL errors raise the matching :class:`~workbench.errors.WorkbenchError`.
        """
        if self.mode == "remote":
            return self.client.graphql(query, variables, raw=True)
        if self._schemas is None:
            from workbench.graphql import SchemaCache

            self._schemas = SchemaCache()
        result = self._schemas.execute(self.client, query, variables)
        if result.errors:
            raise graphql_error(result.errors)
        return result.data

    def close(self) -> None:
        if self.mode == "remote":
            self.client.close()
        if self.workbench is not None:
            self.workbench.close()

    def summary(self) -> dict[str, str]:
        return {"tenant": self.tenant, "user": self.user, "server": self.server, "mode": self.mode}

    def __repr__(self) -> str:
        return f"Workbench tenant {self.tenant!r} as {self.user!r} on {self.server} ({self.mode})"

    def _repr_html_(self) -> str:
        rows = "".join(
            f"<tr><th style='text-align:left'>{html.escape(k)}</th>"
            f"<td style='text-align:left'>{html.escape(v)}</td></tr>"
            for k, v in self.summary().items()
        )
        return f"<table class='workbench-connection'>{rows}</table>"


def _user(environ: Mapping[str, str]) -> str:
    for name in USER_VARIABLES:
        if environ.get(name):
            return environ[name]
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (containers running as a bare uid)
        return "unknown"


def connect_from_environment(
    environ: Mapping[str, str] | None = None,
    *,
    tenant: str | None = None,
    data_dir: str | Path | None = None,
    url: str | None = None,
) -> NotebookConnection:
    """Bind to the tenant the environment names; explicit arguments win over the environment.

    Remote when ``url`` or ``WORKBENCH_API_URL`` is given (unless ``data_dir`` is), else
    in-process on ``data_dir`` or ``WORKBENCH_HOME`` (default ``~/.workbench``).
    Raises :class:`~workbench.errors.ValidationError` without a tenant and
    :class:`~workbench.errors.NotFound` when the tenant does not exist.
    """
    env = os.environ if environ is None else environ
    tenant_id = tenant or env.get(TENANT_VARIABLE, "").strip()
    if not tenant_id:
        raise ValidationError(
            f"no tenant to bind 'wb' to: set {TENANT_VARIABLE} (a tenant kernel from "
            "'workbench kernels install --tenant T' sets it) or run '%wb --tenant T'"
        )
    user = _user(env)
    api_url = url or (None if data_dir is not None else env.get(API_URL_VARIABLE) or None)
    if api_url:
        import workbench

        remote = workbench.connect(api_url, tenant=tenant_id)
        try:
            remote.ping()
        except WorkbenchError:
            remote.close()
            raise
        return NotebookConnection(tenant_id, user, remote.url, "remote", remote)
    from workbench.client.local import open_workbench

    home = data_dir if data_dir is not None else env.get(HOME_VARIABLE) or None
    opened = open_workbench(home)
    try:
        local = opened.tenant(tenant_id)
        # Tenant.stream_service builds the entity service while holding the tenant's lock, which
        # deadlocks when the entity service does not exist yet: create it first
        local.entities  # noqa: B018
    except WorkbenchError:
        opened.close()
        raise
    return NotebookConnection(tenant_id, user, str(opened.home), "in-process", local, opened)


def graphql_error(errors: list[GraphQLError]) -> WorkbenchError:
    """The :class:`~workbench.errors.WorkbenchError` for a result's (shaped) GraphQL errors."""
    first = errors[0]
    extensions = first.extensions or {}
    kind = error_class(str(extensions.get("code", "")))
    # a shaped message already lists the error's own details; later errors become details
    details = [ErrorDetail(e.message, ".".join(map(str, e.path or [])) or None) for e in errors[1:]]
    return kind(first.message, details)
