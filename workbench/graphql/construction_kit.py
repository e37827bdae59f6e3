"""``constructionKit``: the tenant's model as data, and ``importLibrary`` as a mutation.

These types are the same for every tenant; their values are plain dicts read by default
resolvers.
"""

from __future__ import annotations

from typing import Any

from graphql import (
    GraphQLArgument,
    GraphQLBoolean,
    GraphQLField,
    GraphQLInt,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLString,
)

from workbench.ck.loader import load_library_from_documents, parse_yaml
from workbench.ck.model import CkModel, CkType
from workbench.ck.naming import graphql_type_name
from workbench.errors import ValidationError
from workbench.graphql.context import GraphQLContext, Info

__all__ = ["CK_IMPORT_RESULT", "CK_QUERY", "import_library_field"]


def _list(of: GraphQLObjectType | Any) -> GraphQLNonNull[Any]:
    return GraphQLNonNull(GraphQLList(GraphQLNonNull(of)))


_S = GraphQLField(GraphQLString)
_S1 = GraphQLField(GraphQLNonNull(GraphQLString))
_B1 = GraphQLField(GraphQLNonNull(GraphQLBoolean))

CK_MODEL = GraphQLObjectType(
    "CkModelInfo",
    {
        "modelId": _S1,
        "name": _S1,
        "version": _S1,
        "description": _S,
        "dependencies": GraphQLField(_list(GraphQLString)),
    },
)
CK_ATTRIBUTE = GraphQLObjectType(
    "CkAttributeInfo",
    {
        "attributeId": _S1,
        "name": _S1,
        "valueType": _S1,
        "isOptional": _B1,
        "ckEnumId": _S,
        "ckRecordId": _S,
        "declaredOn": _S1,
        "description": _S,
    },
)
CK_ASSOCIATION = GraphQLObjectType(
    "CkAssociationInfo",
    {
        "roleId": _S1,
        "name": _S1,
        "direction": _S1,
        "multiplicity": _S1,
        "targetCkTypeId": _S1,
    },
)
CK_TYPE = GraphQLObjectType(
    "CkTypeInfo",
    {
        "ckTypeId": _S1,
        "name": _S1,
        "ckModelId": _S1,
        "isAbstract": _B1,
        "isFinal": _B1,
        "description": _S,
        "derivedFromCkTypeId": _S,
        "baseTypes": GraphQLField(_list(GraphQLString)),
        "subtypes": GraphQLField(_list(GraphQLString)),
        "graphqlTypeName": _S1,
        "attributes": GraphQLField(_list(CK_ATTRIBUTE)),
        "associations": GraphQLField(_list(CK_ASSOCIATION)),
    },
)
CK_ENUM_VALUE = GraphQLObjectType(
    "CkEnumValueInfo",
    {"key": GraphQLField(GraphQLNonNull(GraphQLInt)), "name": _S1, "description": _S},
)
CK_ENUM = GraphQLObjectType(
    "CkEnumInfo",
    {
        "ckEnumId": _S1,
        "isExtensible": _B1,
        "useFlags": _B1,
        "description": _S,
        "values": GraphQLField(_list(CK_ENUM_VALUE)),
    },
)
CK_RECORD = GraphQLObjectType(
    "CkRecordInfo",
    {
        "ckRecordId": _S1,
        "derivedFromCkRecordId": _S,
        "description": _S,
        "attributes": GraphQLField(_list(CK_ATTRIBUTE)),
    },
)


def _in_library(element_id: str, model_id: str | None) -> bool:
    if model_id is None:
        return True
    library = element_id.rsplit("/", 1)[0]
    return library == model_id or model_id.startswith(f"{library}-")


def _type_info(model: CkModel, ck_type: CkType) -> dict[str, Any]:
    ends = [*model.outbound_ends(ck_type.id), *model.inbound_ends(ck_type.id)]
    return {
        "ckTypeId": ck_type.id,
        "name": ck_type.name,
        "ckModelId": ck_type.library,
        "isAbstract": ck_type.is_abstract,
        "isFinal": ck_type.is_final,
        "description": ck_type.description,
        "derivedFromCkTypeId": ck_type.derived_from,
        "baseTypes": list(ck_type.base_chain),
        "subtypes": model.descendants(ck_type.id),
        "graphqlTypeName": graphql_type_name(ck_type.id),
        "attributes": [
            {
                "attributeId": a.attribute_id,
                "name": a.name,
                "valueType": str(a.value_type),
                "isOptional": a.is_optional,
                "ckEnumId": a.attribute.enum_id,
                "ckRecordId": a.attribute.record_id,
                "declaredOn": a.declared_on,
                "description": a.attribute.description,
            }
            for a in ck_type.attributes.values()
        ],
        "associations": [
            {
                "roleId": e.role.id,
                "name": e.name,
                "direction": e.direction,
                "multiplicity": str(e.multiplicity),
                "targetCkTypeId": e.other_type_id,
            }
            for e in ends
        ],
    }


def _model(info: Info) -> CkModel:
    context: GraphQLContext = info.context
    return context.tenant.model


def _models(_root: Any, info: Info) -> list[dict[str, Any]]:
    return [
        {
            "modelId": lib.model_id,
            "name": lib.name,
            "version": str(lib.version),
            "description": lib.description,
            "dependencies": [str(d) for d in lib.dependencies],
        }
        for lib in _model(info).libraries.values()
    ]


def _types(
    _root: Any,
    info: Info,
    ckModelId: str | None = None,
    ckTypeId: str | None = None,
) -> list[dict[str, Any]]:
    model = _model(info)
    if ckTypeId is not None:
        return [_type_info(model, model.type(ckTypeId))]
    return [_type_info(model, t) for t in model.types.values() if _in_library(t.id, ckModelId)]


def _enums(_root: Any, info: Info, ckModelId: str | None = None) -> list[dict[str, Any]]:
    return [
        {
            "ckEnumId": e.id,
            "isExtensible": e.is_extensible,
            "useFlags": e.use_flags,
            "description": e.description,
            "values": [
                {"key": v.key, "name": v.name, "description": v.description} for v in e.values
            ],
        }
        for e in _model(info).enums.values()
        if _in_library(e.id, ckModelId)
    ]


def _records(_root: Any, info: Info, ckModelId: str | None = None) -> list[dict[str, Any]]:
    return [
        {
            "ckRecordId": r.id,
            "derivedFromCkRecordId": r.derived_from,
            "description": r.description,
            "attributes": [
                {
                    "attributeId": a.attribute_id,
                    "name": a.name,
                    "valueType": str(a.value_type),
                    "isOptional": a.is_optional,
                    "ckEnumId": a.attribute.enum_id,
                    "ckRecordId": a.attribute.record_id,
                    "declaredOn": a.declared_on,
                    "description": a.attribute.description,
                }
                for a in r.attributes.values()
            ],
        }
        for r in _model(info).records.values()
        if _in_library(r.id, ckModelId)
    ]


_MODEL_ARG = {
    "ckModelId": GraphQLArgument(
        GraphQLString,
        description="A library name (`Demo.Energy`) or model id (`Demo.Energy-1.0.0`).",
    )
}

CK_QUERY = GraphQLObjectType(
    "ConstructionKitQuery",
    {
        "models": GraphQLField(_list(CK_MODEL), resolve=_models),
        "types": GraphQLField(
            _list(CK_TYPE),
            {**_MODEL_ARG, "ckTypeId": GraphQLArgument(GraphQLString)},
            resolve=_types,
        ),
        "enums": GraphQLField(_list(CK_ENUM), dict(_MODEL_ARG), resolve=_enums),
        "records": GraphQLField(_list(CK_RECORD), dict(_MODEL_ARG), resolve=_records),
    },
    description="The tenant's Construction Kit model.",
)

CK_IMPORT_RESULT = GraphQLObjectType(
    "CkImportResult",
    {
        "modelId": _S1,
        "previousModelId": _S,
        "addedTypes": GraphQLField(_list(GraphQLString)),
        "changedTypes": GraphQLField(_list(GraphQLString)),
        "removedTypes": GraphQLField(_list(GraphQLString)),
        "migratedEntities": GraphQLField(GraphQLNonNull(GraphQLInt)),
        "unchanged": _B1,
    },
)


def _import_library(_root: Any, info: Info, files: list[str]) -> dict[str, Any]:
    context: GraphQLContext = info.context
    if not files:
        raise ValidationError(
            "importLibrary needs at least one file (the library's YAML documents)"
        )
    documents = []
    for index, text in enumerate(files):
        name = f"files[{index}].yaml"
        try:
            documents.append((name, parse_yaml(text)))
        except Exception as exc:  # yaml raises many types; all mean "not YAML"
            raise ValidationError(
                f"{name} is not valid YAML ({exc.__class__.__name__}: {exc}); send each file of "
                "the library as one string"
            ) from None
    library = load_library_from_documents(documents)
    report = context.tenant.ck.import_library(library)
    return {
        "modelId": report.model_id,
        "previousModelId": report.previous_model_id,
        "addedTypes": report.added_types,
        "changedTypes": report.changed_types,
        "removedTypes": report.removed_types,
        "migratedEntities": report.migrated_entities,
        "unchanged": report.unchanged,
    }


def import_library_field() -> GraphQLField:
    return GraphQLField(
        GraphQLNonNull(CK_IMPORT_RESULT),
        {"files": GraphQLArgument(_list(GraphQLString))},
        _import_library,
        description="Import (or upgrade) a CK library from its YAML documents: ckModel.yaml and "
        "element files, or one compiled file. The schema is rebuilt for the next request.",
    )
