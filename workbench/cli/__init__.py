"""The ``workbench`` command line. Each command group lives in a module of its own."""

from __future__ import annotations

import logging

import click

from workbench import __version__
from workbench.cli.common import WorkbenchGroup, data_dir_option, json_option, url_option

__all__ = ["cli", "main"]


@click.group(cls=WorkbenchGroup, context_settings={"help_option_names": ["-h", "--help"]})
@data_dir_option
@url_option
@json_option
@click.option(
    "--log-level",
    default="WARNING",
    show_default=True,
    type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR"], case_sensitive=False),
    help="Logging level (logs go to stderr).",
)
@click.version_option(__version__, prog_name="workbench")
def cli(log_level: str) -> None:
    """Mesh Workbench: Construction Kit models, runtime entities and stream data per tenant."""
    from workbench.logs import configure_logging

    configure_logging(getattr(logging, log_level.upper()))


def _register() -> None:
    from workbench.cli import (
        admin,
        bench,
        ck,
        communication,
        demo,
        graphql,
        identity,
        kernels,
        login,
        rt,
        secrets,
        serve,
        streams,
        tenant,
        up,
    )

    for module in (
        tenant,
        ck,
        rt,
        streams,
        demo,
        bench,
        serve,
        up,
        identity,
        kernels,
        login,
        admin,
        graphql,
        communication,
        secrets,
    ):
        module.register(cli)
    from workbench.cli import bots, promote

    promote.register(cli)
    bots.register(cli)


_register()


def main() -> None:
    cli(prog_name="workbench")
