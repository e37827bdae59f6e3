"""The parent id kept on each entity row: the target of its ``System/ParentChild`` link.

The System library declares ``ParentChild`` with ``Parent`` multiplicity One, so a child has at
most one parent and grouping by a parent's attribute (``parent->name``) is a join of the entity
with one other row. The entity stores keep that parent's rt id on the entity itself (SQLite: the
indexed column ``entities.parent_rt_id``; MongoDB: the indexed field ``_wbParent``) and maintain
it in their one write path (:meth:`EntityStore.apply`), from the links of the role: links added
or removed, a parent erased (its links go with it), an import or restore (batches like any
other). Entities written before the column existed get it when the store opens (added and
back-filled in one step; see each adapter).

A child with more than one ``ParentChild`` link (only possible by writing the store directly,
bypassing the multiplicity check) holds :data:`MANY_PARENTS` on SQLite, and the list of its
parents on MongoDB; aggregations then keep the to-many join semantics (see
:mod:`workbench.query.aggregation`). Archived parents stay in the column; readers leave them out.
"""

from __future__ import annotations

from workbench.query.aggregation import Hop

__all__ = ["MANY_PARENTS", "PARENT_HOP", "PARENT_ROLE"]

PARENT_ROLE = "System/ParentChild"
#: the hop ``parent->`` stands for: the child's outbound ParentChild link
PARENT_HOP: Hop = (PARENT_ROLE, "outbound")
#: what the SQLite column holds for a child with several parent links (no rt id can equal it:
#: rt ids are written as given, and this one starts with a NUL character)
MANY_PARENTS = "\x00many"
