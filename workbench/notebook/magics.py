"""The notebook magics: ``%wb``, ``%%ck`` and ``%%graphql``.

- ``%wb`` shows the tenant, user and server ``wb`` is bound to; ``%wb --tenant T [--data-dir D |
  --url U]`` binds it to another tenant.
- ``%%ck [--check]`` validates the cell's YAML (one compiled CK library document) against the
  tenant's libraries and imports it, showing the types added, changed and removed; a library that
  does not validate is refused with the error and nothing changes. ``--check`` only validates.
- ``%%graphql [-v NAME=VALUE ...] [--vars DICT] [--raw] [-o NAME]`` runs the cell's query or
  mutation on the tenant's GraphQL API. The result is a DataFrame when it is a list (or a
  connection's ``items``), else the ``data`` dict.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, NoReturn, TypeVar, cast

from IPython.core import magic, magic_arguments
from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell
from IPython.core.magic import Magics, magics_class

from workbench.ck import load_library_from_text
from workbench.ck.model import CkModel
from workbench.errors import WorkbenchError
from workbench.notebook.connection import NotebookConnection, connect_from_environment
from workbench.notebook.display import ImportReportView, error_lines
from workbench.tenancy.catalog import ImportReport

__all__ = ["UnboundClient", "WorkbenchMagics", "parse_variables"]

CELL_SOURCE = "<%%ck cell>"

_F = TypeVar("_F", bound=Callable[..., Any])

# IPython's magic decorators are untyped or typed as unions; these are their typed facades
line_magic = cast(Callable[[str], Callable[[_F], _F]], magic.line_magic)
cell_magic = cast(Callable[[str], Callable[[_F], _F]], magic.cell_magic)
with_arguments = cast(Callable[[], Callable[[_F], _F]], magic_arguments.magic_arguments)
argument = cast(Callable[..., Callable[[_F], _F]], magic_arguments.argument)
parse_argstring = cast(
    Callable[[Callable[..., Any], str], argparse.Namespace], magic_arguments.parse_argstring
)


@dataclass
class UnboundClient:
    """Stands in for ``wb`` when the kernel could not bind to a tenant; says why on any use."""

    reason: str

    def __getattr__(self, name: str) -> NoReturn:
        if name.startswith("_"):  # IPython's display machinery probes for _repr_*_ methods
            raise AttributeError(name)
        raise UsageError(f"wb is not bound to a tenant: {self.reason}")

    def __repr__(self) -> str:
        return f"<wb: not bound to a tenant: {self.reason}>"


def _refused(error: WorkbenchError) -> WorkbenchError:
    """``error`` shown by IPython as its message and details, without a Python traceback: the
    user's YAML or query is at fault, not the code that ran it."""
    lines = error_lines(error)
    # IPython renders an exception having _render_traceback_ with the lines it returns
    error._render_traceback_ = lambda: lines  # type: ignore[attr-defined]
    return error


def parse_variables(
    items: list[str], namespace: Mapping[str, Any], base: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """GraphQL variables from ``-v`` items: ``name=value`` (JSON when it parses, else the text)
    or a bare ``name`` taking the user's variable of that name; they override ``base``."""
    variables = dict(base or {})
    for item in items:
        name, sep, text = item.partition("=")
        name = name.strip()
        if not name:
            raise UsageError(f"-v {item!r}: give NAME=VALUE or the NAME of a notebook variable")
        if not sep:
            if name not in namespace:
                raise UsageError(
                    f"-v {name}: no notebook variable {name!r}; define it or write -v {name}=VALUE"
                )
            variables[name] = namespace[name]
            continue
        try:
            variables[name] = json.loads(text)
        except ValueError:
            variables[name] = text
    return variables


@magics_class
class WorkbenchMagics(Magics):
    """``%wb``, ``%%ck`` and ``%%graphql`` on the tenant ``wb`` is bound to."""

    def __init__(self, shell: InteractiveShell) -> None:
        super().__init__(shell)
        self.connection: NotebookConnection | None = None
        self.unbound_reason = "not connected yet"

    @property
    def _shell(self) -> InteractiveShell:
        assert self.shell is not None, "magics are registered on a shell"
        return self.shell

    # ---- binding ---------------------------------------------------------------------------

    def bind(self, connection: NotebookConnection) -> None:
        """Make ``connection`` the one ``wb`` and the magics use (closing the previous one)."""
        self.unbind()
        self.connection = connection
        self._shell.user_ns["wb"] = connection.client

    def bind_from_environment(self, **overrides: Any) -> NotebookConnection | None:
        """Bind to the tenant the environment (or ``overrides``) names; on failure leave ``wb``
        as an :class:`UnboundClient` saying why, print the reason and return None."""
        try:
            connection = connect_from_environment(**overrides)
        except WorkbenchError as exc:
            self.unbind()
            self.unbound_reason = exc.message
            self._shell.user_ns["wb"] = UnboundClient(exc.message)
            print(f"workbench: wb is not bound to a tenant: {exc.message}", file=sys.stderr)
            return None
        self.bind(connection)
        return connection

    def unbind(self) -> None:
        if self.connection is not None:
            self.connection.close()
            self.connection = None

    def current_model(self) -> CkModel | None:
        """The bound tenant's model (None when unbound), for rich display of CK types."""
        if self.connection is None:
            return None
        model: CkModel = self.connection.client.ck.model()
        return model

    def _require(self) -> NotebookConnection:
        if self.connection is None:
            raise UsageError(
                f"wb is not bound to a tenant: {self.unbound_reason}; bind it with "
                "'%wb --tenant T' (and --data-dir D or --url U)"
            )
        return self.connection

    # ---- magics ----------------------------------------------------------------------------

    @with_arguments()
    @argument("--tenant", help="Bind wb to this tenant.")
    @argument("--data-dir", help="Open this data directory in the kernel (in-process).")
    @argument("--url", help="Reach the tenant through the Asset Repository at this URL.")
    @line_magic("wb")
    def wb(self, line: str) -> NotebookConnection:
        """Show the tenant, user and server ``wb`` is bound to, or bind it to another tenant."""
        args = parse_argstring(self.wb, line)
        if args.tenant or args.data_dir or args.url:
            if args.data_dir and args.url:
                raise UsageError("give --data-dir (in-process) or --url (remote), not both")
            tenant = args.tenant or (self.connection.tenant if self.connection else None)
            if self.bind_from_environment(tenant=tenant, data_dir=args.data_dir, url=args.url):
                return self._require()
            raise UsageError(f"wb is not bound to a tenant: {self.unbound_reason}")
        return self._require()

    @with_arguments()
    @argument(
        "--check", action="store_true", help="Only validate; show what an import would change."
    )
    @cell_magic("ck")
    def ck(self, line: str, cell: str) -> ImportReportView:
        """Validate the cell's YAML as a CK library and import it into the tenant."""
        args = parse_argstring(self.ck, line)
        connection = self._require()
        catalog = connection.client.ck
        try:
            library = load_library_from_text(cell, CELL_SOURCE)
            if not args.check:
                return ImportReportView(catalog.import_library(library))
            previous = catalog.own_libraries().get(library.name)
            new_model = catalog.validate(library)
            report = ImportReport(
                library.model_id, previous.model_id if previous is not None else None
            )
            report.record_changes(catalog.model(), new_model)
            return ImportReportView(report, dry_run=True)
        except WorkbenchError as exc:
            raise _refused(exc) from None

    @with_arguments()
    @argument(
        "-v",
        "--var",
        dest="variables",
        action="append",
        default=[],
        metavar="NAME[=VALUE]",
        help="A variable: NAME=VALUE (JSON or text) or NAME of a notebook variable.",
    )
    @argument("--vars", help="Name of a dict in the notebook holding the variables.")
    @argument("--raw", action="store_true", help="Always return the data dict.")
    @argument("-o", "--output", help="Also store the result in this notebook variable.")
    @cell_magic("graphql")
    def graphql(self, line: str, cell: str) -> Any:
        """Run the cell's GraphQL query on the tenant; a list comes back as a DataFrame."""
        args = parse_argstring(self.graphql, line)
        connection = self._require()
        namespace = self._shell.user_ns
        base: Mapping[str, Any] | None = None
        if args.vars:
            base = namespace.get(args.vars)
            if not isinstance(base, Mapping):
                raise UsageError(f"--vars {args.vars}: no dict of that name in the notebook")
        variables = parse_variables(args.variables, namespace, base)
        try:
            data = connection.graphql(cell, variables or None)
        except WorkbenchError as exc:
            raise _refused(exc) from None
        if args.raw:
            result = data
        else:
            from workbench.client.results import graphql_result

            result = graphql_result(data)
        if args.output:
            namespace[args.output] = result
        return result
