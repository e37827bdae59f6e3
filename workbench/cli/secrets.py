"""``workbench secrets ...``: the key that encrypts secret attributes (see
:mod:`workbench.runtime.secrets`)."""

from __future__ import annotations

from typing import Any

import click

from workbench.cli.common import emit, open_wb, wb_command

__all__ = ["register", "secrets"]


@click.group()
def secrets() -> None:
    """The key encrypting secret attributes (passwords, client secrets) of every tenant."""


def seal_plaintext(tenant: Any) -> int:
    """Encrypt the secret attributes stored in plain text (written before the attribute was
    secret, or before encryption existed); returns how many entities were rewritten."""
    from workbench.runtime.secrets import MASK, secret_attribute_names

    model = tenant.model
    rewritten = 0
    for ck_type in model.concrete_types():
        names = secret_attribute_names(model, ck_type)
        if not names:
            continue
        for entity in tenant.entities.find(ck_type.id, first=None, polymorphic=False).items:
            stored = tenant.entity_store.get_many([entity.rt_id])[entity.rt_id].attributes
            plain = {n: stored[n] for n in names if stored.get(n) not in (None, MASK)}
            if plain:
                tenant.entities.update(entity.rt_id, plain)
                rewritten += 1
    return rewritten


@wb_command(secrets, "rotate-key")
def rotate_key_command() -> None:
    """Encrypt every stored secret of every tenant with a new key (secrets/entity-secrets.key
    in the data directory); values still in plain text are encrypted too. Stop the platform
    first: running services keep the old key in memory."""
    from workbench.runtime.secrets import rotate_key

    wb = open_wb()
    tenants = [wb.tenant(record.id) for record in wb.tenants.list()]
    sealed = sum(seal_plaintext(t) for t in tenants)
    count = rotate_key(wb.secret_cipher, [t.entity_store for t in tenants])
    emit(
        {"reencrypted": count, "sealed": sealed, "keyFile": str(wb.secret_cipher.key_file)},
        lambda c: c.print(
            f"{count} secret(s) re-encrypted with a new key in {wb.secret_cipher.key_file}"
            + (f"; {sealed} entit(ies) held plain-text secrets, now encrypted" if sealed else "")
        ),
    )


def register(cli: click.Group) -> None:
    cli.add_command(secrets)
