"""Loading Construction Kit libraries from YAML folders, compiled files or parsed documents.

The loader checks each library on its own: the file format, value types, multiplicities,
reference syntax, duplicate ids and enum values. Checks that need the other libraries (unknown
references, the dependency closure, inheritance) happen in
:func:`workbench.ck.resolver.resolve_model`. It is liberal in what it accepts: an unknown key, a
model id without a version or a dependency without a range is a *warning* (kept in
:attr:`CkLibrary.warnings`; unknown keys also stay in the compiled form and are exported again),
an error only with ``strict=True``. All errors of a library are raised together as one
:class:`ModelError` whose ``details`` name the file, the element and the reason.

Inside a loaded library, a type's or record's attribute entries point at the library's own
:class:`CkAttribute` when the attribute is declared locally; attributes of other libraries are
stand-ins (``value_type`` String) until the model is resolved.
"""

from __future__ import annotations

import copy
import json
import posixpath
import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from workbench.ck.element_files import expand_element_files
from workbench.ck.findings import Findings
from workbench.ck.library_parser import ELEMENT_KINDS, LibraryParser
from workbench.ck.migrations import parse_inline_migrations, parse_migration_documents
from workbench.ck.model import CkLibrary, Migration
from workbench.ck.references import is_valid_element_id
from workbench.ck.versions import Version, parse_model_id
from workbench.errors import ErrorCollector, ErrorDetail, ModelError, NotFound, ValidationError

__all__ = [
    "ELEMENT_KINDS",
    "dump_library",
    "load_library",
    "load_library_from_documents",
    "load_library_from_text",
    "parse_yaml",
]

_MODEL_FILES = ("ckModel.yaml", "ckModel.yml")


_SAFE_BASE: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when available


class _Yaml12Loader(_SAFE_BASE):  # type: ignore[misc]
    """Safe loader whose booleans are YAML 1.2's ``true``/``false`` only.

    PyYAML follows YAML 1.1, where ``On``, ``Off``, ``Yes`` and ``No`` are booleans; enum value
    names such as ``Off`` must stay strings, as in the .NET tooling that writes these files.
    The resolver tables are Python-level, so the libyaml-based loader honours them too.
    """


_Yaml12Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Yaml12Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool",
    re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
    list("tTfF"),
)


def parse_yaml(text: str) -> Any:
    """Parse one YAML document as library and runtime files are parsed (YAML 1.2 booleans,
    safe types only)."""
    return yaml.load(text, Loader=_Yaml12Loader)  # a (C)SafeLoader subclass: safe


def load_library(path: Path | str, *, strict: bool = False) -> CkLibrary:
    """Load a library from a folder (``ckModel.yaml`` + element files) or one compiled file.

    A folder holding ``ConstructionKit/ckModel.yaml`` is accepted too. A compiled file is YAML or
    JSON (``.json``) holding ``modelId``, ``dependencies`` and the element lists. With
    ``strict``, every warning (see :attr:`CkLibrary.warnings`) is an error.
    """
    path = Path(path)
    if path.is_dir():
        return _load_folder(_library_root(path), strict)
    if not path.is_file():
        raise NotFound(f"construction kit library {str(path)!r} does not exist")
    content = _parse_file(path, str(path))
    return _build(
        [(path.name, content)], location=lambda _name: str(path), source=path, strict=strict
    )


def load_library_from_documents(
    documents: Sequence[tuple[str, Any]], *, source: Path | None = None, strict: bool = False
) -> CkLibrary:
    """Load a library from parsed documents: ``(name, content)`` pairs, names relative paths.

    One document holds ``modelId`` (``ckModel.yaml`` or a compiled file); documents under the
    ``migrations/`` folder next to it are migrations; all others are element files.
    """
    return _build(list(documents), location=lambda name: name, source=source, strict=strict)


def load_library_from_text(
    text: str, source_name: str = "<text>", *, strict: bool = False
) -> CkLibrary:
    """Load a library from the text of one compiled YAML or JSON document."""
    content = _parse_text(text, source_name)
    return load_library_from_documents([(source_name, content)], strict=strict)


def dump_library(library: CkLibrary) -> dict[str, Any]:
    """The library in compiled form (a copy of :attr:`CkLibrary.raw`); loading it gives it back.

    Keys: ``modelId``, ``dependencies``, optional ``description``, the non-empty element lists in
    file format with the original reference strings, and ``migrations`` (with inline ``steps``).
    """
    if not library.raw:
        raise ModelError(
            f"library {library.model_id} was not loaded from files and has no compiled form; "
            "load it with load_library()"
        )
    return copy.deepcopy(library.raw)


def _library_root(folder: Path) -> Path:
    for candidate in (folder, folder / "ConstructionKit"):
        if any((candidate / name).is_file() for name in _MODEL_FILES):
            return candidate
    raise NotFound(
        f"folder {str(folder)!r} holds no ckModel.yaml; a library folder needs ckModel.yaml "
        "(modelId, dependencies) and element files"
    )


def _load_folder(root: Path, strict: bool) -> CkLibrary:
    errors = ErrorCollector()
    documents: list[tuple[str, Any]] = []
    files = sorted(
        p
        for p in root.rglob("*")
        if p.is_file()
        and p.suffix in {".yaml", ".yml"}
        and not any(part.startswith(".") for part in p.relative_to(root).parts)
    )
    for file in files:
        name = file.relative_to(root).as_posix()
        try:
            documents.append((name, _parse_file(file, str(file))))
        except ModelError as exc:
            errors.details.extend(exc.details)
    errors.raise_if_any(ModelError, f"construction kit library {str(root)!r} has invalid YAML")
    return _build(documents, location=lambda name: str(root / name), source=root, strict=strict)


def _parse_file(path: Path, label: str) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ModelError(f"cannot read {label}: {exc}") from exc
    return _parse_text(text, label, as_json=path.suffix == ".json")


def _parse_text(text: str, label: str, *, as_json: bool = False) -> Any:
    try:
        return json.loads(text) if as_json else parse_yaml(text)
    except (yaml.YAMLError, json.JSONDecodeError) as exc:
        problem = str(exc).replace("\n", " ")
        raise ModelError(
            f"{label} is not valid {'JSON' if as_json else 'YAML'}",
            [ErrorDetail(f"not valid {'JSON' if as_json else 'YAML'}: {problem}", label)],
        ) from exc


def _build(
    documents: list[tuple[str, Any]],
    *,
    location: Callable[[str], str],
    source: Path | None,
    strict: bool,
) -> CkLibrary:
    findings = Findings(strict=strict)
    documents = _without_compiled_copies(documents, location, findings)
    documents = expand_element_files(documents, location, findings)
    model_docs = [(n, c) for n, c in documents if isinstance(c, Mapping) and "modelId" in c]
    if len(model_docs) != 1:
        names = ", ".join(location(n) for n, _ in model_docs) or "none"
        raise ModelError(
            f"a library needs exactly one ckModel.yaml (or compiled file) with 'modelId'; "
            f"found: {names}"
        )
    model_name, model_doc = model_docs[0]
    library_name, version = _model_id(model_doc["modelId"], location(model_name), findings)
    parser = LibraryParser(library_name, location, findings)
    root = posixpath.dirname(model_name)
    migration_docs: list[tuple[str, Any]] = []
    element_docs: list[tuple[str, Any]] = [(model_name, model_doc)]
    for name, content in documents:
        if name == model_name:
            continue
        relative = posixpath.relpath(name, root) if root else name
        if relative.startswith("migrations/"):
            migration_docs.append((relative.removeprefix("migrations/"), content))
        else:
            element_docs.append((name, content))
    dependencies = parser.parse_dependencies(model_name, model_doc)
    for name, content in element_docs:
        parser.collect(name, content, is_model_doc=name == model_name)
    library = parser.parse_elements()
    library.name, library.version, library.source = library_name, version, source
    library.dependencies = dependencies
    library.description = model_doc.get("description")
    compiled_migrations: list[dict[str, Any]] = []
    if "migrations" in model_doc:
        library.migrations = parse_inline_migrations(
            model_doc["migrations"], library_name, location(model_name), findings
        )
        compiled_migrations = copy.deepcopy(model_doc["migrations"])
    if migration_docs:
        migrations, compiled = parse_migration_documents(
            migration_docs,
            library_name,
            findings,
            location=lambda n: location(posixpath.join(root, "migrations", n)),
        )
        library.migrations.extend(migrations)
        compiled_migrations.extend(compiled)
    library.migrations.sort(key=_migration_order)
    findings.errors.raise_if_any(
        ModelError,
        f"construction kit library {library.model_id} has errors; fix them and load it again",
    )
    library.raw = parser.compiled(model_doc, compiled_migrations)
    library.warnings = list(findings.warnings)
    return library


def _model_id(value: Any, where: str, findings: Findings) -> tuple[str, Version]:
    """Name and version of ``modelId``; a bare name reads as version 0.0.0 (a warning)."""
    try:
        return parse_model_id(value)
    except ValidationError as exc:
        if isinstance(value, str) and is_valid_element_id(value.strip()):
            name = value.strip()
            findings.warn(
                f"modelId {value!r} has no version; read as {name}-0.0.0, write it as {name}-1.0.0",
                where,
                "modelId",
            )
            return name, Version(0)
        raise ModelError("invalid model id", [ErrorDetail(exc.message, where, "modelId")]) from None


def _without_compiled_copies(
    documents: list[tuple[str, Any]], location: Callable[[str], str], findings: Findings
) -> list[tuple[str, Any]]:
    """Drop compiled copies (files with ``modelId``) lying next to a ``ckModel.yaml``.

    Build tools write such copies (``ck-basic.yaml``) into the library folder; reading them as
    element files would declare every element twice.
    """
    has_model_file = any(
        posixpath.basename(n) in _MODEL_FILES and isinstance(c, Mapping) and "modelId" in c
        for n, c in documents
    )
    if not has_model_file:
        return documents
    kept = []
    for name, content in documents:
        copied = isinstance(content, Mapping) and "modelId" in content
        if copied and posixpath.basename(name) not in _MODEL_FILES:
            findings.warn(
                "file holds 'modelId' next to ckModel.yaml and is ignored as a compiled copy; "
                "remove it from the library folder",
                location(name),
                None,
            )
            continue
        kept.append((name, content))
    return kept


def _migration_order(migration: Migration) -> tuple[Any, ...]:
    return (migration.from_version, migration.to_version)
