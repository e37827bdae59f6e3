"""``workbench ck ...``: import, validate, list and show Construction Kit libraries."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
import yaml
from rich.console import Console
from rich.table import Table

from workbench.cli.common import emit, open_tenant, wb_command

__all__ = ["ck", "register"]

tenant_option = click.option("--tenant", "tenant_id", required=True, help="Tenant id.")
strict_option = click.option(
    "--strict",
    is_flag=True,
    help="Treat warnings (unknown keys, a model id without version, a dependency without "
    "range, unlisted migration scripts) as errors.",
)
_SHOWN_WARNINGS = 8


def _warnings(libraries: list[Any]) -> list[str]:
    return [str(w) for lib in libraries for w in lib.warnings]


def _print_warnings(console: Console, warnings: list[str]) -> None:
    """The warnings grouped by what they say (the part after file and element), most first."""
    if not warnings:
        return
    groups: dict[str, list[str]] = {}
    for text in warnings:
        *where, message = text.split(": ", 2) if text.count(": ") >= 2 else ("", text)
        message = message.split("; known keys:")[0]  # --json keeps the full text
        groups.setdefault(message, []).append(": ".join(p for p in where if p))
    console.print(f"  {len(warnings)} warning(s) (accepted; --strict makes them errors):")
    ordered = sorted(groups.items(), key=lambda item: -len(item[1]))
    for message, places in ordered[:_SHOWN_WARNINGS]:
        more = f" (+{len(places) - 1} more)" if len(places) > 1 else ""
        console.print(f"    {places[0]}{more}: {message}", markup=False, highlight=False)
    if len(ordered) > _SHOWN_WARNINGS:
        console.print(f"    ... {len(ordered) - _SHOWN_WARNINGS} more kinds; --json lists all")


def _refuse_warnings(library: Any) -> None:
    """Under ``--strict``: the warnings found only when the library meets a model (a dependency
    on an OctoMesh platform library that is not installed) are errors too."""
    from workbench.errors import ModelError

    if library.warnings:
        raise ModelError(
            f"{library.model_id} has {len(library.warnings)} warning(s), errors under --strict",
            [*library.warnings],
        )


@click.group()
def ck() -> None:
    """Construction Kit libraries: import, validate, list, show, export."""


@wb_command(ck, "import")
@tenant_option
@strict_option
@click.argument("path", type=click.Path(exists=True, path_type=Path))
def import_(tenant_id: str, strict: bool, path: Path) -> None:
    """Import the library at PATH (folder with ckModel.yaml, or one compiled file)."""
    from workbench.ck import load_library

    library = load_library(path, strict=strict)
    tenant = open_tenant(tenant_id)
    if strict:
        tenant.ck.validate(library)  # what only resolving finds (see workbench.ck.platform)
        _refuse_warnings(library)
    report = tenant.ck.import_library(library)
    warnings = _warnings([library])
    data = {**report.to_dict(), "types": len(library.types), "warnings": warnings}

    def human(console: Console) -> None:
        if report.unchanged:
            console.print(f"{report.model_id} is already imported; nothing changed")
            _print_warnings(console, warnings)
            return
        verb = f"upgraded {report.previous_model_id} to" if report.previous_model_id else "imported"
        console.print(
            f"{verb} [bold]{report.model_id}[/] into tenant {tenant_id} "
            f"({len(library.types)} types)"
        )
        for label, items in (
            ("added", report.added_types),
            ("changed", report.changed_types),
            ("removed", report.removed_types),
        ):
            if items:
                console.print(f"  {label}: {', '.join(items)}")
        if report.migrated_entities:
            console.print(f"  migrated {report.migrated_entities} entities")
        _print_warnings(console, warnings)

    emit(data, human)


@wb_command(ck, "validate")
@strict_option
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
def validate(strict: bool, paths: tuple[Path, ...]) -> None:
    """Check libraries (and their dependencies among PATHS) without importing anything.

    Types are counted as ``ck import`` counts them: those each library declares itself.
    """
    from workbench.ck import load_library, resolve_model, select_versions, system_library
    from workbench.ck.model import Dependency
    from workbench.ck.versions import VersionRange

    libraries = [load_library(p, strict=strict) for p in paths]
    available: dict[str, list[Any]] = {}
    for lib in [*libraries, system_library()]:
        available.setdefault(lib.name, []).append(lib)
    request = [Dependency(lib.name, VersionRange.exactly(lib.version)) for lib in libraries]
    model = resolve_model(select_versions(request, available))
    if strict:
        for lib in libraries:
            _refuse_warnings(lib)
    own = {lib.name for lib in libraries}
    data: dict[str, Any] = {
        "valid": [lib.model_id for lib in libraries],
        "types": sum(len(lib.types) for lib in libraries),
        "typesByLibrary": {lib.model_id: len(lib.types) for lib in libraries},
        "enums": sum(1 for e in model.enums if e.rpartition("/")[0] in own),
        "records": sum(1 for r in model.records if r.rpartition("/")[0] in own),
        "warnings": _warnings(libraries),
    }

    def human(console: Console) -> None:
        counts = ", ".join(f"{m} ({n} types)" for m, n in data["typesByLibrary"].items())
        console.print(f"valid: {counts}")
        _print_warnings(console, data["warnings"])

    emit(data, human)


@wb_command(ck, "list")
@tenant_option
def list_(tenant_id: str) -> None:
    """List the libraries a tenant sees (its own and its parents')."""
    catalog = open_tenant(tenant_id).ck
    own = catalog.own_libraries()
    model = catalog.model()
    rows = [
        {
            "modelId": lib.model_id,
            "inherited": name not in own and name != "System",
            "builtIn": name == "System",
            "types": sum(1 for t in model.types.values() if t.library == name),
            "description": lib.description,
        }
        for name, lib in sorted(model.libraries.items())
    ]

    def human(console: Console) -> None:
        table = Table("library", "types", "source", "description")
        for r in rows:
            source = "built-in" if r["builtIn"] else "parent" if r["inherited"] else "tenant"
            table.add_row(r["modelId"], str(r["types"]), source, r["description"] or "")
        console.print(table)

    emit(rows, human)


def type_description(model: Any, type_id: str) -> dict[str, Any]:
    """A CK type as a JSON-friendly dict: attributes (own and inherited), associations."""
    from workbench.ck.naming import graphql_field_name

    ck_type = model.type(type_id)
    return {
        "ckTypeId": ck_type.id,
        "isAbstract": ck_type.is_abstract,
        "isFinal": ck_type.is_final,
        "description": ck_type.description,
        "baseChain": ck_type.base_chain,
        "subtypes": model.descendants(type_id),
        "attributes": [
            {
                "name": graphql_field_name(a.name),
                "attributeId": a.attribute_id,
                "valueType": str(a.value_type),
                "optional": a.is_optional,
                "declaredOn": a.declared_on,
                "enum": a.attribute.enum_id,
                "record": a.attribute.record_id,
            }
            for a in ck_type.attributes.values()
        ],
        "associations": [
            {
                "name": end.name,
                "direction": end.direction,
                "role": end.role.id,
                "multiplicity": str(end.multiplicity),
                "otherType": end.other_type_id,
            }
            for end in (*model.outbound_ends(type_id), *model.inbound_ends(type_id))
        ],
    }


@wb_command(ck, "show")
@tenant_option
@click.argument("type_id", metavar="CKTYPEID")
def show(tenant_id: str, type_id: str) -> None:
    """Show a CK type: its attributes (own and inherited) and associations."""
    data = type_description(open_tenant(tenant_id).model, type_id)

    def human(console: Console) -> None:
        flags = [
            f for f, on in (("abstract", data["isAbstract"]), ("final", data["isFinal"])) if on
        ]
        console.print(f"[bold]{data['ckTypeId']}[/] {' '.join(flags)}")
        console.print("base chain: " + (" → ".join(data["baseChain"]) or "(root)"))
        if data["subtypes"]:
            console.print("subtypes: " + ", ".join(data["subtypes"]))
        table = Table("attribute", "value type", "required", "declared on", title="attributes")
        for a in data["attributes"]:
            kind = a["valueType"] + (
                f" ({a['enum'] or a['record']})" if a["enum"] or a["record"] else ""
            )
            table.add_row(a["name"], kind, "" if a["optional"] else "yes", a["declaredOn"])
        console.print(table)
        table = Table(
            "name", "direction", "role", "multiplicity", "other end", title="associations"
        )
        for e in data["associations"]:
            table.add_row(e["name"], e["direction"], e["role"], e["multiplicity"], e["otherType"])
        console.print(table)

    emit(data, human)


@wb_command(ck, "export")
@tenant_option
@click.argument("library")
@click.argument("out", type=click.Path(path_type=Path), required=False)
def export(tenant_id: str, library: str, out: Path | None) -> None:
    """Write an imported LIBRARY in compiled form to OUT (or stdout)."""
    document = open_tenant(tenant_id).ck.export_library(library)
    text = yaml.safe_dump(document, sort_keys=False, allow_unicode=True)
    if out is None:
        click.echo(text, nl=False)
    else:
        out.write_text(text, encoding="utf-8")
        emit({"written": str(out)}, lambda c: c.print(f"wrote {out}"))


def register(cli: click.Group) -> None:
    cli.add_command(ck)
