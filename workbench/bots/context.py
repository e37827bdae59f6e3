"""``wb.bot`` inside a running bot: declared outputs and artifacts of the run.

A bot run's kernel gets ``WORKBENCH_BOT_RUN_DIR``; :func:`attach` (called by the setup cell the
runner puts first) adds a :class:`BotContext` to ``wb``. ``wb.bot.output(name, value)`` records a
JSON value in the run's history; ``wb.bot.artifact(name, obj)`` keeps a file (a DataFrame as
Parquet, bytes or text as they are). Outside a run (an author trying the notebook) the context
keeps the outputs in memory, so the same notebook runs unchanged.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
from pathlib import Path
from typing import Any

__all__ = ["KERNEL_ENV_FILE", "RUN_DIR_VARIABLE", "BotContext", "attach", "prepare", "read_outputs"]

RUN_DIR_VARIABLE = "WORKBENCH_BOT_RUN_DIR"
#: the run's environment for a pre-started kernel (read once by :func:`prepare`, then removed)
KERNEL_ENV_FILE = "kernel-env.json"
_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,100}$")


def _check(name: str) -> str:
    if not _NAME.fullmatch(name):
        from workbench.errors import ValidationError

        raise ValidationError(
            f"bot output name {name!r} is invalid: 1-100 letters, digits and _ . -"
        )
    return name


class BotContext:
    """What ``wb.bot`` is: the run's parameters, outputs and artifacts."""

    def __init__(self, run_dir: Path | None = None) -> None:
        self.run_dir = run_dir
        #: outputs declared so far (also written to the run directory during a run)
        self.outputs: dict[str, Any] = {}
        self.run_id = run_dir.name if run_dir is not None else None

    @property
    def in_run(self) -> bool:
        return self.run_dir is not None

    def output(self, name: str, value: Any) -> Any:
        """Declare ``value`` (JSON-serialisable) as the run's output ``name``; returns it."""
        _check(name)
        json.dumps(value, default=str)  # fail here, in the cell that declared it
        self.outputs[name] = value
        if self.run_dir is not None:
            with open(self.run_dir / "outputs.jsonl", "a", encoding="utf-8") as out:
                out.write(json.dumps({"name": name, "value": value}, default=str) + "\n")
        return value

    def artifact(self, name: str, obj: Any) -> Path | None:
        """Keep ``obj`` as the run's file ``name``: a DataFrame as ``name.parquet``, bytes or
        text as they are. Returns the file written (None outside a run)."""
        _check(name)
        if self.run_dir is None:
            return None
        folder = self.run_dir / "artifacts"
        folder.mkdir(exist_ok=True)
        if hasattr(obj, "to_parquet"):
            path = folder / (name if name.endswith(".parquet") else f"{name}.parquet")
            obj.to_parquet(path)
        elif isinstance(obj, bytes):
            path = folder / name
            path.write_bytes(obj)
        else:
            path = folder / name
            path.write_text(str(obj), encoding="utf-8")
        return path

    def __repr__(self) -> str:
        where = f"run {self.run_id}" if self.run_id else "not in a bot run"
        return f"<wb.bot: {where}, outputs {sorted(self.outputs)}>"


def attach(namespace: dict[str, Any]) -> BotContext:
    """Give the notebook's ``wb`` a ``bot`` attribute (and ``wb_bot`` in the namespace)."""
    run_dir = os.environ.get(RUN_DIR_VARIABLE)
    context = BotContext(Path(run_dir) if run_dir else None)
    wb = namespace.get("wb")
    if wb is not None:
        # a client that takes no attributes still has ``wb_bot``
        with contextlib.suppress(AttributeError, TypeError):
            object.__setattr__(wb, "bot", context)
    namespace["wb_bot"] = context
    return context


def prepare(namespace: dict[str, Any], run_dir: str) -> BotContext:
    """The setup cell of a run: a pre-started kernel (a pool's) takes the run's environment
    (tenant, API URL and token, run directory) from ``run_dir``, moves to its ``work`` folder
    and binds ``wb`` again; then :func:`attach`."""
    env_file = Path(run_dir) / KERNEL_ENV_FILE
    if env_file.is_file():
        environment = json.loads(env_file.read_text(encoding="utf-8"))
        env_file.unlink()  # the token stays in this kernel's memory only
        os.environ.update(environment)
        os.chdir(Path(run_dir) / "work")
        from IPython import get_ipython

        shell = get_ipython()
        # the extension's magics, looked up by name (this module is imported by the extension)
        magics = shell.magics_manager.registry.get("WorkbenchMagics") if shell else None
        if magics is not None:
            magics.bind_from_environment()
    return attach(namespace)


def read_outputs(run_dir: Path) -> dict[str, Any]:
    """The outputs a run declared (the last value of each name)."""
    path = run_dir / "outputs.jsonl"
    outputs: dict[str, Any] = {}
    if path.is_file():
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                item = json.loads(line)
                outputs[item["name"]] = item["value"]
    return outputs
