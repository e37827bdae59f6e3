"""What promotion reads from a notebook: stripped content, hash, parameters, imports, ``%%ck``
cells and typed functions.

Everything here is static analysis (``ast`` on the cells' sources): nothing of the notebook runs
in the calling process. Running it is the validator's job, in a kernel of its own.
"""

from __future__ import annotations

import ast
import copy
import hashlib
import importlib.metadata
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from workbench.errors import ErrorDetail, ValidationError

__all__ = [
    "Notebook",
    "code_cells",
    "imported_packages",
    "load_notebook",
    "notebook_parameters",
    "python_source",
    "strip_outputs",
]

#: papermill's convention: the cell whose assignments are the notebook's parameters
PARAMETERS_TAG = "parameters"


@dataclass(frozen=True)
class Notebook:
    """A notebook as promotion sees it: its JSON (outputs stripped) and its content hash."""

    content: dict[str, Any]
    content_hash: str

    @classmethod
    def from_content(cls, content: dict[str, Any]) -> Notebook:
        stripped = strip_outputs(content)
        canonical = json.dumps(stripped, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
        return cls(stripped, "sha256:" + hashlib.sha256(canonical.encode()).hexdigest())

    def text(self) -> str:
        return json.dumps(self.content, indent=1, ensure_ascii=False) + "\n"


def load_notebook(source: Path | str | dict[str, Any]) -> Notebook:
    """Read a notebook from a path, JSON text or a parsed document; ValidationError if it is not
    an nbformat 4 notebook."""
    if isinstance(source, dict):
        content = source
        where = "the notebook"
    else:
        where = str(source)
        try:
            text = Path(source).read_text(encoding="utf-8") if isinstance(source, Path) else source
            content = json.loads(text)
        except OSError as exc:
            raise ValidationError(f"cannot read the notebook {where}: {exc.strerror}") from None
        except ValueError as exc:
            raise ValidationError(f"{where} is not a notebook (invalid JSON: {exc})") from None
    if not isinstance(content, dict) or not isinstance(content.get("cells"), list):
        raise ValidationError(f"{where} is not a Jupyter notebook: it has no list of cells")
    if int(content.get("nbformat", 0)) != 4:
        raise ValidationError(
            f"{where} has nbformat {content.get('nbformat')!r}; promotion reads nbformat 4 "
            "(save it from JupyterLab 3 or later)"
        )
    return Notebook.from_content(content)


def _source(cell: dict[str, Any]) -> str:
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else str(source)


def strip_outputs(content: dict[str, Any]) -> dict[str, Any]:
    """A copy without outputs, execution counts and per-run metadata (what git keeps)."""
    stripped = copy.deepcopy(content)
    for cell in stripped.get("cells", []):
        cell["source"] = _source(cell)
        if cell.get("cell_type") == "code":
            cell["outputs"] = []
            cell["execution_count"] = None
        metadata = cell.get("metadata") or {}
        for key in ("execution", "papermill", "collapsed", "scrolled"):
            metadata.pop(key, None)
        cell["metadata"] = metadata
        cell.pop("id", None)
    metadata = stripped.get("metadata") or {}
    metadata.pop("papermill", None)
    stripped["metadata"] = metadata
    return stripped


def code_cells(notebook: Notebook) -> list[tuple[int, str, list[str]]]:
    """``(index, source, tags)`` of every code cell."""
    found = []
    for index, cell in enumerate(notebook.content["cells"]):
        if cell.get("cell_type") == "code":
            tags = list((cell.get("metadata") or {}).get("tags") or [])
            found.append((index, _source(cell), tags))
    return found


def cell_magic_cells(notebook: Notebook, magic: str) -> list[tuple[int, str, str]]:
    """``(index, magic line arguments, body)`` of every ``%%magic`` cell."""
    found = []
    for index, source, _tags in code_cells(notebook):
        first, _, body = source.lstrip().partition("\n")
        words = first.split(maxsplit=1)
        if words and words[0] == f"%%{magic}":
            found.append((index, words[1] if len(words) > 1 else "", body))
    return found


def python_source(source: str) -> str:
    """A cell's source as plain Python: cell magics become nothing, line magics and shell
    escapes become ``pass`` (keeping line numbers)."""
    if source.lstrip().startswith("%%"):
        return ""
    lines = []
    for line in source.splitlines():
        stripped = line.lstrip()
        if stripped.startswith(("%", "!")):
            lines.append(line[: len(line) - len(stripped)] + "pass")
        else:
            lines.append(line)
    return "\n".join(lines)


def _parse(index: int, source: str) -> ast.Module:
    try:
        return ast.parse(python_source(source))
    except SyntaxError as exc:
        raise ValidationError(
            "the notebook has a cell that is not valid Python",
            [ErrorDetail(f"{exc.msg} (line {exc.lineno})", f"cell {index}")],
        ) from None


def notebook_parameters(notebook: Notebook) -> dict[str, Any]:
    """The parameters cell's assignments: ``{name: default}`` (literal defaults; others as
    their source text). Empty when no cell is tagged ``parameters``."""
    parameters: dict[str, Any] = {}
    for index, source, tags in code_cells(notebook):
        if PARAMETERS_TAG not in tags:
            continue
        for node in _parse(index, source).body:
            targets: list[ast.expr] = []
            value: ast.expr | None = None
            if isinstance(node, ast.Assign):
                targets, value = node.targets, node.value
            elif isinstance(node, ast.AnnAssign) and node.value is not None:
                targets, value = [node.target], node.value
            for target in targets:
                if isinstance(target, ast.Name) and value is not None:
                    try:
                        parameters[target.id] = ast.literal_eval(value)
                    except ValueError:
                        parameters[target.id] = ast.unparse(value)
    return parameters


def _imported_modules(notebook: Notebook) -> set[str]:
    names: set[str] = set()
    for index, source, _tags in code_cells(notebook):
        for node in ast.walk(_parse(index, source)):
            if isinstance(node, ast.Import):
                names.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                names.add(node.module.split(".")[0])
    return names


def imported_packages(notebook: Notebook) -> dict[str, str]:
    """``{distribution: version}`` of the packages the notebook imports, from this Python
    environment (the one the tenant kernels run); standard-library modules are left out and
    a module no installed distribution provides maps to ``"not installed"``."""
    distributions = importlib.metadata.packages_distributions()
    found: dict[str, str] = {}
    for module in sorted(_imported_modules(notebook)):
        if module in sys.stdlib_module_names:
            continue
        dists = distributions.get(module)
        if not dists:
            found[module] = "not installed"
            continue
        for dist in dists:
            try:
                found[dist] = importlib.metadata.version(dist)
            except importlib.metadata.PackageNotFoundError:
                found[dist] = "not installed"
    return found
