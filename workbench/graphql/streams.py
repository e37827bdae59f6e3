"""``streamData`` queries and mutations (placeholder until the stream service lands)."""

from __future__ import annotations

from typing import Any

from graphql import GraphQLField, GraphQLObjectType, GraphQLString

from workbench.graphql.types import NameRegistry, OutputTypes

__all__ = ["build_stream_mutation", "build_stream_query"]


def build_stream_query(outputs: OutputTypes, names: NameRegistry) -> GraphQLObjectType:
    return GraphQLObjectType("StreamDataQuery", {"status": GraphQLField(GraphQLString)})


def build_stream_mutation(outputs: OutputTypes, names: NameRegistry) -> GraphQLObjectType:
    return GraphQLObjectType("StreamDataMutation", {"status": GraphQLField(GraphQLString)})


_ = Any
