"""``streamData``: time series of entity attributes (``ts<Type>``, ``...Aggregate``,
``...Downsample``) and writes, delegating to ``tenant.streams(type_id)``.

Only the attributes a request selects are read or aggregated.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from graphql import (
    GraphQLArgument,
    GraphQLBoolean,
    GraphQLField,
    GraphQLFloat,
    GraphQLID,
    GraphQLInputField,
    GraphQLInputObjectType,
    GraphQLInputType,
    GraphQLInt,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLOutputType,
    GraphQLString,
)

from workbench.ck.model import CkType, TypeAttribute, ValueType
from workbench.ck.naming import graphql_field_name, graphql_stream_query_name, graphql_type_name
from workbench.graphql.context import GraphQLContext, Info
from workbench.graphql.resolvers import MAX_PAGE_SIZE
from workbench.graphql.scalars import AGGREGATE_FUNCTION_ENUM, DATETIME, LONG, PAGE_INFO
from workbench.graphql.types import NameRegistry, OutputTypes

__all__ = ["build_stream_mutation", "build_stream_query"]

_STREAM_TYPES = {
    ValueType.STRING: GraphQLString,
    ValueType.BOOLEAN: GraphQLBoolean,
    ValueType.INT: GraphQLInt,
    ValueType.INT64: LONG,
    ValueType.DOUBLE: GraphQLFloat,
    ValueType.DATETIME: DATETIME,
    ValueType.DATETIME_OFFSET: DATETIME,
}
_NUMERIC = frozenset({ValueType.INT, ValueType.INT64, ValueType.DOUBLE})
_FUNCTIONS = ("avg", "min", "max", "sum", "count", "first", "last")

Resolver = Callable[..., Any]


def _stream_attributes(ck_type: CkType) -> dict[str, TypeAttribute]:
    return {
        graphql_field_name(name): a
        for name, a in ck_type.attributes.items()
        if a.value_type in _STREAM_TYPES or a.value_type is ValueType.ENUM
    }


def _value_type(outputs: OutputTypes, attribute: TypeAttribute) -> GraphQLOutputType:
    if attribute.value_type is ValueType.ENUM:
        enum_id = attribute.attribute.enum_id
        if enum_id and not outputs.model.enum(enum_id).use_flags:
            return outputs.enum(enum_id)
        return GraphQLString
    return _STREAM_TYPES[attribute.value_type]


def _function_type(function: str, attribute: TypeAttribute, base: GraphQLOutputType) -> Any:
    if function == "count":
        return LONG
    if function in ("avg", "sum"):
        return GraphQLFloat if attribute.value_type in _NUMERIC else None
    return base


def _rows(result: Any) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = result.rows()
    return rows


def _read_resolver(type_id: str) -> Resolver:
    def resolve(_root: Any, info: Info, **args: Any) -> dict[str, Any]:
        context: GraphQLContext = info.context
        first = args.get("first") or 1000
        if first > MAX_PAGE_SIZE:
            from workbench.errors import ValidationError

            raise ValidationError(
                f"first={first} is too large; ask for at most {MAX_PAGE_SIZE} points per page "
                "and page with `after`, or use the REST bulk endpoint"
            )
        attributes = _selected_attributes(info, "items", type_id, context)
        result = context.tenant.streams(type_id).read(
            args.get("from"),
            args.get("to"),
            rt_ids=args.get("rtIds"),
            attributes=attributes,
            descending=bool(args.get("descending")),
            first=first,
            after=args.get("after"),
        )
        return {
            "pageInfo": {"hasNextPage": result.has_next_page, "endCursor": result.end_cursor},
            "items": _rows(result),
        }

    return resolve


def _selected_attributes(
    info: Info, list_field: str, type_id: str, context: GraphQLContext, *, suffix: bool = False
) -> list[str]:
    """Attribute names selected under ``list_field`` (``voltageAvg`` → ``voltage``)."""
    from graphql import FieldNode

    ck_type = context.tenant.model.type(type_id)
    known = _stream_attributes(ck_type)
    chosen: list[str] = []
    for node in info.field_nodes:
        for selection in node.selection_set.selections if node.selection_set else ():
            if isinstance(selection, FieldNode) and selection.name.value == list_field:
                names = {
                    s.name.value
                    for s in (selection.selection_set.selections if selection.selection_set else ())
                    if isinstance(s, FieldNode)
                }
                for field in known:
                    wanted = (
                        any(f"{field}{fn.capitalize()}" in names for fn in _FUNCTIONS)
                        if suffix
                        else field in names
                    )
                    if wanted and known[field].name not in chosen:
                        chosen.append(known[field].name)
    return chosen


def _aggregate_resolver(type_id: str) -> Resolver:
    def resolve(_root: Any, info: Info, **args: Any) -> dict[str, Any]:
        context: GraphQLContext = info.context
        attributes = _selected_attributes(info, "items", type_id, context, suffix=True)
        result = context.tenant.streams(type_id).aggregate(
            args["from"],
            args["to"],
            args["interval"],
            args.get("functions") or ["avg"],
            rt_ids=args.get("rtIds"),
            attributes=attributes or None,
        )
        return {"interval": result.interval or args["interval"], "items": _rows(result)}

    return resolve


def _downsample_resolver(type_id: str) -> Resolver:
    def resolve(_root: Any, info: Info, **args: Any) -> dict[str, Any]:
        context: GraphQLContext = info.context
        attributes = _selected_attributes(info, "items", type_id, context)
        result = context.tenant.streams(type_id).downsample(
            args["from"],
            args["to"],
            args["limit"],
            rt_ids=args.get("rtIds"),
            attributes=attributes or None,
            function=args.get("function") or "avg",
        )
        return {"interval": result.interval, "items": _rows(result)}

    return resolve


def _range_args(required: bool) -> dict[str, GraphQLArgument]:
    time = GraphQLNonNull(DATETIME) if required else DATETIME
    return {
        "rtIds": GraphQLArgument(GraphQLList(GraphQLNonNull(GraphQLID))),
        "from": GraphQLArgument(time, description="Inclusive start."),
        "to": GraphQLArgument(time, description="Exclusive end."),
    }


def _stream_types(outputs: OutputTypes) -> list[CkType]:
    return [t for t in outputs.model.types.values() if not t.is_abstract and _stream_attributes(t)]


def build_stream_query(outputs: OutputTypes, names: NameRegistry) -> GraphQLObjectType:
    fields: dict[str, GraphQLField] = {}
    for ck_type in _stream_types(outputs):
        base = graphql_type_name(ck_type.id)
        attributes = _stream_attributes(ck_type)
        key_fields = {"rtId": GraphQLField(GraphQLNonNull(GraphQLID))}
        point = GraphQLObjectType(
            names.claim(f"{base}StreamPoint", f"stream points of {ck_type.id}"),
            {
                **key_fields,
                "timeStamp": GraphQLField(GraphQLNonNull(DATETIME)),
                **{f: GraphQLField(_value_type(outputs, a)) for f, a in attributes.items()},
            },
        )
        page = GraphQLObjectType(
            names.claim(f"{base}StreamConnection", f"stream pages of {ck_type.id}"),
            {
                "pageInfo": GraphQLField(GraphQLNonNull(PAGE_INFO)),
                "items": GraphQLField(GraphQLNonNull(GraphQLList(GraphQLNonNull(point)))),
            },
        )
        bucket_fields = {**key_fields, "bucket": GraphQLField(GraphQLNonNull(DATETIME))}
        for field, attribute in attributes.items():
            value_type = _value_type(outputs, attribute)
            for function in _FUNCTIONS:
                output = _function_type(function, attribute, value_type)
                if output is not None:
                    bucket_fields[f"{field}{function.capitalize()}"] = GraphQLField(output)
        bucket = GraphQLObjectType(
            names.claim(f"{base}StreamBucket", f"stream aggregates of {ck_type.id}"), bucket_fields
        )
        aggregate = GraphQLObjectType(
            names.claim(f"{base}StreamAggregate", f"stream aggregates of {ck_type.id}"),
            {
                "interval": GraphQLField(GraphQLString),
                "items": GraphQLField(GraphQLNonNull(GraphQLList(GraphQLNonNull(bucket)))),
            },
        )
        sample = GraphQLObjectType(
            names.claim(f"{base}StreamSample", f"downsampled streams of {ck_type.id}"),
            {
                **key_fields,
                "bucket": GraphQLField(GraphQLNonNull(DATETIME)),
                **{
                    f: GraphQLField(
                        GraphQLFloat if a.value_type in _NUMERIC else _value_type(outputs, a)
                    )
                    for f, a in attributes.items()
                },
            },
        )
        downsample = GraphQLObjectType(
            names.claim(f"{base}StreamDownsample", f"downsampled streams of {ck_type.id}"),
            {
                "interval": GraphQLField(GraphQLString, description="The bucket size chosen."),
                "items": GraphQLField(GraphQLNonNull(GraphQLList(GraphQLNonNull(sample)))),
            },
        )
        name = graphql_stream_query_name(ck_type.id)
        fields[name] = GraphQLField(
            GraphQLNonNull(page),
            {
                **_range_args(False),
                "first": GraphQLArgument(GraphQLInt, description="Page size (default 1000)."),
                "after": GraphQLArgument(GraphQLString),
                "descending": GraphQLArgument(GraphQLBoolean, default_value=False),
            },
            _read_resolver(ck_type.id),
            description=f"Raw points of {ck_type.id} in [from, to), keyset paged.",
        )
        fields[f"{name}Aggregate"] = GraphQLField(
            GraphQLNonNull(aggregate),
            {
                **_range_args(True),
                "interval": GraphQLArgument(
                    GraphQLNonNull(GraphQLString), description="1s, 15m, 1h, 1d, ..."
                ),
                "functions": GraphQLArgument(
                    GraphQLList(GraphQLNonNull(AGGREGATE_FUNCTION_ENUM)), default_value=["avg"]
                ),
            },
            _aggregate_resolver(ck_type.id),
            description="Aggregates per rtId and bucket; fields are <attribute><Function>.",
        )
        fields[f"{name}Downsample"] = GraphQLField(
            GraphQLNonNull(downsample),
            {
                **_range_args(True),
                "limit": GraphQLArgument(GraphQLNonNull(GraphQLInt)),
                "function": GraphQLArgument(AGGREGATE_FUNCTION_ENUM, default_value="avg"),
            },
            _downsample_resolver(ck_type.id),
            description="At most `limit` buckets per rtId (for charts).",
        )
    if not fields:
        fields["types"] = GraphQLField(
            GraphQLNonNull(GraphQLList(GraphQLNonNull(GraphQLString))),
            resolve=lambda *_: [],
            description="No type of this model has stream attributes.",
        )
    return GraphQLObjectType("StreamDataQuery", fields)


def _input_type(outputs: OutputTypes, attribute: TypeAttribute) -> GraphQLInputType:
    output = _value_type(outputs, attribute)
    assert isinstance(output, GraphQLInputType)
    return output


def _write_resolver(type_id: str) -> Resolver:
    def resolve(_root: Any, info: Info, points: list[dict[str, Any]]) -> int:
        context: GraphQLContext = info.context
        written: int = context.tenant.streams(type_id).write(points)  # rows name timeStamp
        return written

    return resolve


def _non_null_list(of: GraphQLInputObjectType) -> GraphQLNonNull[Any]:
    return GraphQLNonNull(GraphQLList(GraphQLNonNull(of)))


def _placeholder(_root: Any, _info: Info) -> dict[str, Any]:
    return {}


def build_stream_mutation(outputs: OutputTypes, names: NameRegistry) -> GraphQLObjectType:
    fields: dict[str, GraphQLField] = {}
    for ck_type in _stream_types(outputs):
        base = graphql_type_name(ck_type.id)
        point_input = GraphQLInputObjectType(
            names.claim(f"{base}StreamPointInput", f"stream writes of {ck_type.id}"),
            {
                "rtId": GraphQLInputField(GraphQLNonNull(GraphQLID)),
                "timeStamp": GraphQLInputField(GraphQLNonNull(DATETIME)),
                **{
                    f: GraphQLInputField(_input_type(outputs, a))
                    for f, a in _stream_attributes(ck_type).items()
                },
            },
        )
        mutations = GraphQLObjectType(
            names.claim(f"{base}StreamMutations", f"stream writes of {ck_type.id}"),
            {
                "write": GraphQLField(
                    GraphQLNonNull(GraphQLInt),
                    {
                        "points": GraphQLArgument(
                            GraphQLNonNull(GraphQLList(GraphQLNonNull(point_input)))
                        )
                    },
                    _write_resolver(ck_type.id),
                    description="Upsert points (validated as a whole); returns how many.",
                )
            },
        )
        fields[graphql_field_name(base)] = GraphQLField(
            GraphQLNonNull(mutations), resolve=_placeholder
        )
    if not fields:
        fields["types"] = GraphQLField(
            GraphQLNonNull(GraphQLList(GraphQLNonNull(GraphQLString))), resolve=lambda *_: []
        )
    return GraphQLObjectType("StreamDataMutation", fields)
