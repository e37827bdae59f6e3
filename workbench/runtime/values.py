"""Attribute values of runtime entities: validation, storage forms and export forms.

Pure functions over the resolved model, no I/O. :func:`normalize_attributes` turns user input
(GraphQL, Python, runtime files) into the storage form kept in
:attr:`~workbench.storage.base.StoredEntity.attributes` (keyed by each attribute's *declared*
name on the type); :func:`externalize_attributes` is the reverse for export and display;
:func:`coerce_value` turns a filter's comparison value into the storage form.

Storage form per value type:

============================  ===============================================================
String, BinaryLinked          ``str`` (BinaryLinked: a non-empty reference)
Boolean                       ``bool``
Int / Int64                   ``int`` in the signed 32-bit / 64-bit range
Double                        finite ``float``
DateTime, DateTimeOffset      timezone-aware ``datetime`` in UTC (the input offset is not kept)
TimeSpan                      ``float`` seconds, signed: compares and sorts like the duration;
                              exported as an ISO 8601 duration (``PT15M``)
Enum                          the ``int`` key; for ``useFlags`` enums the OR of the keys
Record                        ``dict`` keyed by the record's declared attribute names; a value
                              of a record *derived* from the declared one also holds
                              ``"ckRecordId"`` (:data:`RECORD_ID_KEY`) naming it
RecordArray                   ``list`` of such dicts
StringArray / IntArray        ``list[str]`` / ``list[int]`` (elements checked as Int, 32-bit)
GeospatialPoint               ``{"type": "Point", "coordinates": [lon, lat]}`` with floats
Binary                        canonical base64 ``str``
============================  ===============================================================
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

from workbench.ck.model import CkModel, CkType
from workbench.errors import ErrorCollector, ValidationError
from workbench.runtime.coercion import coerce_value, split_list_value
from workbench.runtime.export import externalize_attributes
from workbench.runtime.fastpath import fast_normalize
from workbench.runtime.normalizer import _Normalizer, find_attribute
from workbench.runtime.operators import applicable_operators
from workbench.runtime.scalars import RECORD_ID_KEY
from workbench.runtime.timespans import format_timespan, parse_timespan

__all__ = [
    "RECORD_ID_KEY",
    "applicable_operators",
    "coerce_value",
    "externalize_attributes",
    "fast_normalize",
    "find_attribute",
    "format_timespan",
    "normalize_attributes",
    "parse_timespan",
    "split_list_value",
]


def normalize_attributes(
    model: CkModel,
    ck_type: CkType | str,
    values: Mapping[str, Any] | Sequence[Mapping[str, Any]],
    *,
    keyed_by: Literal["name", "id"] = "name",
    partial: bool = False,
    location: str = "",
    errors: ErrorCollector | None = None,
) -> dict[str, Any]:
    """Validate attribute values of an entity of ``ck_type``; return them in storage form,
    keyed by declared name (see the module docstring for each value type's form).

    ``values`` are keyed by attribute name (declared ``SerialNumber`` or GraphQL ``serialNumber``,
    any casing) or, with ``keyed_by="id"``, by full attribute id (``Demo.Energy/SerialNumber``);
    with ids a runtime-file list ``[{id, value}]`` is accepted too. Records may be plain mappings
    by name or the runtime-file form ``{ckRecordId, attributes: [{id, value}]}``.

    Unknown attributes are rejected. Unless ``partial`` (an update with some attributes only),
    missing attributes get their defaults and missing required ones are errors. ``None`` for an
    optional attribute means absent (left out of the result); for a required one it is an error.

    Every problem is collected; they are raised together as one :class:`ValidationError` whose
    details carry ``location`` (``entities[3]``, an rtId) and the attribute path
    (``phaseL1.voltage``). When ``errors`` is given, problems are added to it instead and
    nothing is raised (the result then holds only the valid values).
    """
    resolved = model.type(ck_type) if isinstance(ck_type, str) else ck_type
    fast = fast_normalize(model, resolved, values, keyed_by, partial)
    if fast is not None:
        return fast
    collector = errors if errors is not None else ErrorCollector()
    before = len(collector.details)
    normalizer = _Normalizer(model, resolved.id, location or None, collector)
    out = normalizer.members(
        resolved.id, resolved.attributes, values, keyed_by=keyed_by, partial=partial, prefix=""
    )
    if errors is None:
        count = len(collector.details) - before
        where = f"{location}: " if location else ""
        plural = "s" if count != 1 else ""
        collector.raise_if_any(
            ValidationError, f"{where}{count} invalid attribute value{plural} for {resolved.id}"
        )
    return out
