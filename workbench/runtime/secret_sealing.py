"""Secret attributes on the entity write path: sealed into encrypted meta documents when
written, revealed only on request (a base of :class:`~workbench.runtime.service.EntityService`;
the cipher and the key file are :mod:`workbench.runtime.secrets`).
"""

from __future__ import annotations

from typing import Any

from workbench.ck.model import CkModel
from workbench.errors import SecretKeyError
from workbench.runtime.entity import Entity
from workbench.runtime.secrets import MASK, SECRETS_NAMESPACE, SecretCipher
from workbench.runtime.values import externalize_attributes
from workbench.runtime.write_plan import EntityServiceState, WritePlan
from workbench.storage.base import MetaWrite

__all__ = ["SecretSealing"]


class SecretSealing(EntityServiceState):
    """Seals secret attributes into the plan; :meth:`reveal_secrets` decrypts them."""

    def _seal_secrets(self, model: CkModel, plan: WritePlan) -> None:
        """Move the new values of secret attributes into encrypted meta documents (same batch);
        the entities keep MASK. MASK written back keeps the stored secret; a removed attribute
        loses it."""
        facts = self._facts_of(model)
        touched = [
            (e, rid in plan.inserts)
            for rid, e in (
                *plan.inserts.items(),
                *((rid, u[0]) for rid, u in plan.updates.items()),
            )
            if facts.secrets_of(e.ck_type_id) and not e.archived
        ]
        if not touched:
            return
        updated = [e.rt_id for e, new in touched if not new]
        stored = {r: self._store.get_meta(SECRETS_NAMESPACE, r) or {} for r in updated}
        for entity, new in touched:
            before = {} if new else stored[entity.rt_id]
            document = dict(before)
            for name in facts.secrets_of(entity.ck_type_id):
                value = entity.attributes.get(name)
                if value is None:
                    document.pop(name, None)
                elif value == MASK:
                    if name not in document:  # nothing stored to keep: the attribute is unset
                        del entity.attributes[name]
                else:
                    document[name] = self._cipher(entity.rt_id).encrypt(value)
                    entity.attributes[name] = MASK
            if document != before:
                plan.meta.append(MetaWrite(SECRETS_NAMESPACE, entity.rt_id, document or None))

    def _cipher(self, rt_id: str) -> SecretCipher:
        if self.secret_cipher is None:
            raise SecretKeyError(
                f"entity {rt_id} has secret attributes but this entity service has no secret "
                "key; open the tenant through workbench.open(DATA_DIR) (its key file is "
                "DATA_DIR/secrets/entity-secrets.key) or set EntityService.secret_cipher"
            )
        return self.secret_cipher

    def reveal_secrets(self, entity: Entity) -> dict[str, Any]:
        """The attributes of ``entity`` (GraphQL names) with its secrets decrypted: only for the
        adapter that uses the entity (the Communication Controller's configuration push),
        never for an API answer."""
        attributes = dict(entity.attributes)
        model = self._model()
        ck_type = model.types.get(entity.ck_type_id)
        names = self._facts_of(model).secrets_of(entity.ck_type_id)
        if ck_type is None or not names:
            return attributes
        document = self._store.get_meta(SECRETS_NAMESPACE, entity.rt_id) or {}
        plain: dict[str, Any] = {}
        for name, token in document.items():
            if name in names:
                what = f"secret attribute {name} of {entity.ck_type_id} {entity.rt_id}"
                plain[name] = self._cipher(entity.rt_id).decrypt(str(token), what=what)
        attributes.update(externalize_attributes(model, ck_type, plain, keyed_by="name"))
        return attributes
