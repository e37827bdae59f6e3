"""GraphQL names generated from model elements (CONSTRUCTION_KIT.md, "GraphQL names").

Plain functions, so the GraphQL layer and the import-time clash check use the same rules.

========================================  ==============================================
model element                             GraphQL name
========================================  ==============================================
type ``Industry.Energy/EnergyMeter``      object type ``IndustryEnergyEnergyMeter``
its mutation input                        ``IndustryEnergyEnergyMeterInput``
its list query (under ``runtime``)        ``rtIndustryEnergyEnergyMeter``
its stream query (under ``streamData``)   ``tsIndustryEnergyEnergyMeter``
its mutation field (under ``runtime``)    ``industryEnergyEnergyMeters``
enum ``Demo.Energy/MeterState``           enum type ``DemoEnergyMeterState`` (``...Enum``
                                          when a type or record has the same name)
enum value ``InService``                  ``IN_SERVICE``
record ``Demo.Energy/PhaseInfo``          ``DemoEnergyPhaseInfo`` / ``DemoEnergyPhaseInfoInput``
attribute name ``MeteringPointNumber``    field ``meteringPointNumber``
role ends ``Parent`` / ``Children``       fields ``parent`` / ``children``
========================================  ==============================================
"""

from __future__ import annotations

import re
from collections.abc import Collection
from typing import Any

__all__ = [
    "SYSTEM_FIELD_NAMES",
    "graphql_association_field_name",
    "graphql_enum_type_name",
    "graphql_enum_value_name",
    "graphql_field_name",
    "graphql_input_type_name",
    "graphql_list_query_name",
    "graphql_mutation_field_name",
    "graphql_object_type_names",
    "graphql_record_input_type_name",
    "graphql_record_type_name",
    "graphql_stream_query_name",
    "graphql_type_name",
    "is_valid_graphql_name",
]

#: Fields every entity object type has besides its attributes and associations.
SYSTEM_FIELD_NAMES = frozenset(
    {"rtId", "ckTypeId", "rtWellKnownName", "rtCreationDateTime", "rtChangedDateTime", "rtVersion"}
)

_GRAPHQL_NAME = re.compile(r"^[_A-Za-z][_0-9A-Za-z]*$")
_SEPARATORS = re.compile(r"[^0-9A-Za-z_]+")
_WORD_BOUNDARY = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")


def is_valid_graphql_name(name: str) -> bool:
    """True when ``name`` is a legal GraphQL name that does not use the reserved ``__`` prefix."""
    return bool(_GRAPHQL_NAME.match(name)) and not name.startswith("__")


def graphql_type_name(element_id: str) -> str:
    """Object type name of a CK type: dots, slash and hyphens removed, each part PascalCase.

    ``"Industry.Energy/EnergyMeter"`` → ``"IndustryEnergyEnergyMeter"``.
    """
    parts = (part for part in _SEPARATORS.split(element_id) if part)
    return "".join(part[0].upper() + part[1:] for part in parts)


def graphql_input_type_name(type_id: str) -> str:
    """Mutation input type of a CK type: ``"Demo.Energy/Site"`` → ``"DemoEnergySiteInput"``."""
    return f"{graphql_type_name(type_id)}Input"


def graphql_enum_type_name(enum_id: str, taken: Collection[str] = ()) -> str:
    """Enum type name: ``"Demo.Energy/MeterState"`` → ``"DemoEnergyMeterState"``.

    Published kits declare an enum and a type with one id (``InvoicePeriod``); when the plain
    name is in ``taken`` (see :func:`graphql_object_type_names`) the enum gets ``Enum`` appended.
    """
    name = graphql_type_name(enum_id)
    return f"{name}Enum" if name in taken else name


def graphql_object_type_names(model: Any) -> frozenset[str]:
    """The GraphQL names of the model's types and records (and their input types)."""
    names: set[str] = set()
    for type_id in model.types:
        names |= {graphql_type_name(type_id), graphql_input_type_name(type_id)}
    for record_id in model.records:
        names |= {graphql_record_type_name(record_id), graphql_record_input_type_name(record_id)}
    return frozenset(names)


def graphql_record_type_name(record_id: str) -> str:
    """Record object type: ``"Demo.Energy/PhaseInfo"`` → ``"DemoEnergyPhaseInfo"``."""
    return graphql_type_name(record_id)


def graphql_record_input_type_name(record_id: str) -> str:
    """Record input type: ``"Demo.Energy/PhaseInfo"`` → ``"DemoEnergyPhaseInfoInput"``."""
    return f"{graphql_type_name(record_id)}Input"


def graphql_field_name(name: str) -> str:
    """Field name of an attribute or association end: first letter lower-cased.

    ``"MeteringPointNumber"`` → ``"meteringPointNumber"``; ``"Parent"`` → ``"parent"``.
    """
    return name[:1].lower() + name[1:]


def graphql_association_field_name(end_name: str) -> str:
    """Field of a role end (``outboundName`` or ``inboundName``).

    ``"Children"`` → ``"children"``.
    """
    return graphql_field_name(end_name)


def graphql_list_query_name(type_id: str) -> str:
    """List query under ``runtime``: ``"rt"`` + type name.

    ``"Industry.Energy/EnergyMeter"`` → ``"rtIndustryEnergyEnergyMeter"``.
    """
    return f"rt{graphql_type_name(type_id)}"


def graphql_stream_query_name(type_id: str) -> str:
    """Stream query under ``streamData``: ``"ts"`` + type name.

    ``"Demo.Energy/EnergyMeter"`` → ``"tsDemoEnergyEnergyMeter"``.
    """
    return f"ts{graphql_type_name(type_id)}"


def graphql_mutation_field_name(type_id: str) -> str:
    """Mutation field under ``runtime``: type name with the first letter lower-cased, plus ``s``.

    ``"Industry.Energy/EnergyMeter"`` → ``"industryEnergyEnergyMeters"``.
    """
    return f"{graphql_field_name(graphql_type_name(type_id))}s"


def graphql_enum_value_name(value_name: str) -> str:
    """Enum value in UPPER_SNAKE_CASE:

    ``"Active"`` → ``"ACTIVE"``, ``"InService"`` → ``"IN_SERVICE"``.

    Word boundaries are lower-to-upper case changes and the end of an acronym (``"HTTPError"`` →
    ``"HTTP_ERROR"``); other characters than letters and digits become ``_``.
    """
    spaced = _WORD_BOUNDARY.sub("_", value_name.strip())
    return re.sub(r"_+", "_", _SEPARATORS.sub("_", spaced)).strip("_").upper()
