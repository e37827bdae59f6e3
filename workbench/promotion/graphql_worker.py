"""The process that runs a GraphQL extension's notebook code: ``python -m
workbench.promotion.graphql_worker NOTEBOOK.json``.

It executes the notebook's code cells (``%%`` cell magics left out, line magics as ``pass``)
with ``wb`` bound to the tenant the environment names, then answers one JSON request per line
on stdin: ``{"op": "describe"}`` lists the typed functions, ``{"op": "call", "function": f,
"args": {...}}`` calls one. Answers go to the original stdout, one JSON line each; whatever the
notebook prints goes to stderr. The API server talks to it through
:class:`~workbench.promotion.graphql_functions.FunctionWorker` and never imports the code.
"""

from __future__ import annotations

import inspect
import json
import os
import sys
import traceback
import types
import typing
from collections.abc import Callable
from typing import Any

from workbench.promotion.notebooks import load_notebook, python_source

__all__ = ["describe_annotation", "main"]

_SCALARS: dict[Any, str] = {int: "Int", float: "Float", str: "String", bool: "Boolean"}


def describe_annotation(annotation: Any) -> str:
    """A GraphQL type reference for a Python annotation: ``int`` → ``Int!``, ``float | None`` →
    ``Float``, ``list[str]`` → ``[String!]!``, ``dict``/``Any`` → ``JSON!``, a string naming a
    CK type (``"Demo.Energy/EnergyMeter"``) → ``entity:Demo.Energy/EnergyMeter!``."""
    nullable = False
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        members = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(members) != len(typing.get_args(annotation)):
            nullable = True
        if len(members) != 1:
            raise TypeError(f"the union {annotation!r} has no GraphQL type; use one type")
        annotation, origin = members[0], typing.get_origin(members[0])
    mark = "" if nullable else "!"
    if isinstance(annotation, typing.ForwardRef):
        annotation = annotation.__forward_arg__
    if isinstance(annotation, str):
        if "/" in annotation:
            return f"entity:{annotation}{mark}"
        raise TypeError(f"the annotation {annotation!r} is not a type (or a CK type id)")
    if annotation in _SCALARS:
        return _SCALARS[annotation] + mark
    if origin in (list, tuple, set, frozenset) or annotation in (list, tuple):
        args = [a for a in typing.get_args(annotation) if a is not Ellipsis]
        if not args:
            return "JSON" + mark
        return f"[{describe_annotation(args[0])}]{mark}"
    if annotation is Any or origin is dict or annotation is dict:
        return "JSON" + mark
    import datetime

    if annotation is datetime.datetime:
        return "DateTime" + mark
    raise TypeError(
        f"the annotation {annotation!r} has no GraphQL type; use int, float, str, bool, "
        "datetime, list[...], dict, X | None or a CK type id as a string"
    )


def _functions(namespace: dict[str, Any]) -> dict[str, Callable[..., Any]]:
    found: dict[str, Callable[..., Any]] = {}
    for name, value in namespace.items():
        if name.startswith("_") or not inspect.isfunction(value):
            continue
        if value.__module__ != "__notebook__":
            continue  # imported, not defined in the notebook
        found[name] = value
    return found


def _hints(func: Callable[..., Any]) -> dict[str, Any]:
    """The function's annotations evaluated, CK type ids (``"Demo.Energy/Meter"``, also inside
    ``list[...]``) kept as strings."""
    hints: dict[str, Any] = {}
    for name, annotation in func.__annotations__.items():
        if isinstance(annotation, str):
            if "/" in annotation and '"' not in annotation and "'" not in annotation:
                hints[name] = annotation
                continue
            try:
                hints[name] = eval(annotation, func.__globals__)
            except Exception as exc:
                raise TypeError(f"the annotation {annotation!r} does not evaluate: {exc}") from exc
            continue
        hints[name] = annotation
    return hints


def _describe(name: str, func: Callable[..., Any]) -> dict[str, Any]:
    signature = inspect.signature(func)
    hints = _hints(func)
    if "return" not in hints and signature.return_annotation is inspect.Signature.empty:
        raise TypeError("it has no return annotation")
    args = []
    for parameter in signature.parameters.values():
        if parameter.kind in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD):
            raise TypeError(f"*{parameter.name} has no GraphQL form")
        if parameter.name not in hints:
            raise TypeError(f"argument {parameter.name!r} has no type annotation")
        kind = describe_annotation(hints[parameter.name])
        arg: dict[str, Any] = {"name": parameter.name, "type": kind}
        if parameter.default is not inspect.Parameter.empty:
            arg["type"] = arg["type"].rstrip("!")
            arg["default"] = parameter.default
        args.append(arg)
    returns = hints.get("return", signature.return_annotation)
    return {
        "name": name,
        "description": inspect.getdoc(func) or None,
        "args": args,
        "returns": describe_annotation(returns),
    }


def _entity_ids(value: Any) -> Any:
    """Entities returned by a function travel as their rtIds."""
    if isinstance(value, list | tuple):
        return [_entity_ids(v) for v in value]
    if isinstance(value, dict) and "rtId" in value:
        return value["rtId"]
    rt_id = getattr(value, "rt_id", None)
    return rt_id if rt_id is not None else value


def _load(path: str) -> dict[str, Any]:
    with open(path, encoding="utf-8") as source:
        notebook = load_notebook(json.load(source))
    namespace: dict[str, Any] = {"__name__": "__notebook__"}
    try:
        from workbench.notebook.connection import connect_from_environment

        namespace["wb"] = connect_from_environment().client
    except Exception as exc:  # the functions may not need wb; say why it is missing
        from workbench.notebook.magics import UnboundClient

        namespace["wb"] = UnboundClient(str(exc))
    for index, cell in enumerate(notebook.content["cells"]):
        if cell.get("cell_type") != "code":
            continue
        code = compile(python_source(str(cell.get("source", ""))), f"<cell {index}>", "exec")
        exec(code, namespace)
    return namespace


def main(argv: list[str] | None = None) -> int:
    protocol = os.fdopen(os.dup(sys.stdout.fileno()), "w", encoding="utf-8", buffering=1)
    sys.stdout = sys.stderr  # the notebook's prints must not mix with answers
    path = (argv or sys.argv[1:])[0]
    try:
        namespace = _load(path)
    except BaseException as exc:
        failure = {"ready": False, "error": f"{type(exc).__name__}: {exc}"}
        protocol.write(json.dumps(failure) + "\n")
        traceback.print_exc()
        return 1
    functions = _functions(namespace)
    protocol.write(json.dumps({"ready": True}) + "\n")
    for line in sys.stdin:
        if not line.strip():
            continue
        request = json.loads(line)
        answer: dict[str, Any] = {"id": request.get("id")}
        try:
            if request["op"] == "describe":
                described, skipped = [], []
                for name, func in sorted(functions.items()):
                    try:
                        described.append(_describe(name, func))
                    except TypeError as exc:
                        skipped.append({"name": name, "reason": str(exc)})
                answer["result"] = {"functions": described, "skipped": skipped}
            else:
                func = functions[request["function"]]
                answer["result"] = _entity_ids(func(**(request.get("args") or {})))
            json.dumps(answer, default=str)
        except BaseException as exc:
            answer = {"id": request.get("id"), "error": f"{type(exc).__name__}: {exc}"}
        protocol.write(json.dumps(answer, default=str) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
