"""The Construction Kit: versioned libraries of types, attributes, records, enums and roles.

Load libraries with :func:`load_library`, choose versions with :func:`select_versions`, and
resolve them into a validated :class:`CkModel` with :func:`resolve_model`. The package imports no
web framework.
"""

from workbench.ck.loader import (
    dump_library,
    load_library,
    load_library_from_documents,
    load_library_from_text,
)
from workbench.ck.migrations import STEP_ACTIONS, apply_steps, migrations_between
from workbench.ck.model import (
    SCALAR_VALUE_TYPES,
    AssociationEnd,
    CkAssociationRole,
    CkAttribute,
    CkEnum,
    CkIndex,
    CkLibrary,
    CkModel,
    CkRecord,
    CkType,
    Dependency,
    EnumValue,
    IndexType,
    Migration,
    MigrationStep,
    Multiplicity,
    TypeAssociation,
    TypeAttribute,
    ValueType,
)
from workbench.ck.naming import (
    SYSTEM_FIELD_NAMES,
    graphql_association_field_name,
    graphql_enum_type_name,
    graphql_enum_value_name,
    graphql_field_name,
    graphql_input_type_name,
    graphql_list_query_name,
    graphql_mutation_field_name,
    graphql_record_input_type_name,
    graphql_record_type_name,
    graphql_stream_query_name,
    graphql_type_name,
    is_valid_graphql_name,
)
from workbench.ck.references import full_id, resolve_reference, split_id
from workbench.ck.resolver import resolve_model, select_versions
from workbench.ck.system import ROOT_TYPE_ID, SYSTEM_LIBRARY_NAME, system_library
from workbench.ck.versions import Version, VersionRange, parse_dependency, parse_model_id

__all__ = [
    "ROOT_TYPE_ID",
    "SCALAR_VALUE_TYPES",
    "STEP_ACTIONS",
    "SYSTEM_FIELD_NAMES",
    "SYSTEM_LIBRARY_NAME",
    "AssociationEnd",
    "CkAssociationRole",
    "CkAttribute",
    "CkEnum",
    "CkIndex",
    "CkLibrary",
    "CkModel",
    "CkRecord",
    "CkType",
    "Dependency",
    "EnumValue",
    "IndexType",
    "Migration",
    "MigrationStep",
    "Multiplicity",
    "TypeAssociation",
    "TypeAttribute",
    "ValueType",
    "Version",
    "VersionRange",
    "apply_steps",
    "dump_library",
    "full_id",
    "graphql_association_field_name",
    "graphql_enum_type_name",
    "graphql_enum_value_name",
    "graphql_field_name",
    "graphql_input_type_name",
    "graphql_list_query_name",
    "graphql_mutation_field_name",
    "graphql_record_input_type_name",
    "graphql_record_type_name",
    "graphql_stream_query_name",
    "graphql_type_name",
    "is_valid_graphql_name",
    "load_library",
    "load_library_from_documents",
    "load_library_from_text",
    "migrations_between",
    "parse_dependency",
    "parse_model_id",
    "resolve_model",
    "resolve_reference",
    "select_versions",
    "split_id",
    "system_library",
]
