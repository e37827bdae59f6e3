"""Logging in against LDAP / Active Directory (ldap3): bind, user lookup, group → role mapping.

A tenant's LDAP provider is a directory document (``kind: ldap``) read into
:class:`LdapSettings`. :func:`ldap_login` binds with the service account (or anonymously), finds
the user's entry, binds as that entry with the given password, reads the groups the entry is a
member of, and maps group names to workbench roles.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from workbench.errors import BackendUnavailable, ValidationError
from workbench.identity.directory import ExternalIdentity
from workbench.identity.model import ROLES

__all__ = ["LdapSettings", "ldap_login"]

log = logging.getLogger("workbench.identity.ldap")


@dataclass(frozen=True)
class LdapSettings:
    """How to find and check users in one LDAP directory.

    ``user_filter`` and ``group_filter`` are templates: ``{username}`` and ``{dn}`` are
    replaced by escaped values. For Active Directory use ``(sAMAccountName={username})`` and
    ``(member={dn})`` (or ``memberOf`` on the user entry). ``group_roles`` maps group names
    (the ``group_name_attribute``, ``cn`` by default) to lists of roles.
    """

    name: str
    url: str
    user_base: str
    bind_dn: str | None = None
    bind_password: str | None = None
    user_filter: str = "(uid={username})"
    group_base: str | None = None
    group_filter: str = "(member={dn})"
    group_name_attribute: str = "cn"
    email_attribute: str = "mail"
    name_attribute: str = "cn"
    group_roles: Mapping[str, list[str]] = field(default_factory=dict)
    start_tls: bool = False
    timeout: int = 5

    @classmethod
    def from_document(cls, doc: Mapping[str, Any]) -> LdapSettings:
        roles = {str(k): list(v) for k, v in dict(doc.get("groupRoles") or {}).items()}
        for group, mapped in roles.items():
            unknown = [r for r in mapped if r not in ROLES]
            if unknown:
                raise ValidationError(
                    f"LDAP group {group!r} maps to unknown roles {unknown}; use: {', '.join(ROLES)}"
                )
        return cls(
            name=str(doc["name"]),
            url=str(doc["url"]),
            user_base=str(doc["userBase"]),
            bind_dn=doc.get("bindDn"),
            bind_password=doc.get("bindPassword"),
            user_filter=str(doc.get("userFilter") or "(uid={username})"),
            group_base=doc.get("groupBase"),
            group_filter=str(doc.get("groupFilter") or "(member={dn})"),
            group_name_attribute=str(doc.get("groupNameAttribute") or "cn"),
            email_attribute=str(doc.get("emailAttribute") or "mail"),
            name_attribute=str(doc.get("nameAttribute") or "cn"),
            group_roles=roles,
            start_tls=bool(doc.get("startTls", False)),
        )


def _ldap3() -> Any:
    """The ldap3 module, imported on first use.

    ldap3 2.9 uses names pyasn1 >= 0.6.1 deprecated (``tagMap``, ``typeMap``); the warning is
    about ldap3's code, not ours, so it is silenced for this import only."""
    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore", message=r"(tagMap|typeMap) is deprecated", category=DeprecationWarning
        )
        import ldap3
        import ldap3.core.exceptions
        import ldap3.utils.conv
    return ldap3


def _first(entry: Any, attribute: str) -> str | None:
    values = entry.entry_attributes_as_dict.get(attribute) or []
    return str(values[0]) if values else None


def ldap_login(settings: LdapSettings, username: str, password: str) -> ExternalIdentity | None:
    """The identity of ``username`` when ``password`` is right, else None.

    An empty password is refused before anything is sent: LDAP treats a bind with a DN and no
    password as an anonymous bind, which "succeeds". Raises BackendUnavailable when the server
    cannot be reached.
    """
    if not password or not username:
        return None
    ldap3 = _ldap3()
    escape_filter_chars = ldap3.utils.conv.escape_filter_chars
    server = ldap3.Server(settings.url, connect_timeout=settings.timeout)
    try:
        service = ldap3.Connection(
            server,
            user=settings.bind_dn,
            password=settings.bind_password,
            receive_timeout=int(settings.timeout),
            raise_exceptions=False,
        )
        if settings.start_tls:
            service.open()
            service.start_tls()
        if not service.bind():
            raise BackendUnavailable(
                f"LDAP provider {settings.name!r}: the service bind failed "
                f"({service.result.get('description')}); check bindDn and bindPassword"
            )
        try:
            user_filter = settings.user_filter.format(username=escape_filter_chars(username))
            service.search(
                settings.user_base, user_filter, ldap3.SUBTREE, attributes=ldap3.ALL_ATTRIBUTES
            )
            entries = list(service.entries)
            if len(entries) != 1:
                return None
            entry = entries[0]
            dn = str(entry.entry_dn)
            user = ldap3.Connection(
                server, user=dn, password=password, receive_timeout=int(settings.timeout)
            )
            if settings.start_tls:
                user.open()
                user.start_tls()
            try:
                accepted = user.bind()
            finally:
                user.unbind()  # closes the socket whether the bind worked or not
            if not accepted:
                return None
            groups: list[str] = []
            if settings.group_base:
                group_filter = settings.group_filter.format(
                    dn=escape_filter_chars(dn), username=escape_filter_chars(username)
                )
                service.search(
                    settings.group_base,
                    group_filter,
                    ldap3.SUBTREE,
                    attributes=[settings.group_name_attribute],
                )
                for group in service.entries:
                    name = _first(group, settings.group_name_attribute)
                    if name:
                        groups.append(name)
        finally:
            service.unbind()
    except ldap3.core.exceptions.LDAPException as exc:
        raise BackendUnavailable(
            f"LDAP provider {settings.name!r} at {settings.url} failed: {exc}"
        ) from exc
    roles = sorted({role for g in groups for role in settings.group_roles.get(g, [])})
    return ExternalIdentity(
        source=f"ldap:{settings.name}",
        username=username,
        email=_first(entry, settings.email_attribute),
        name=_first(entry, settings.name_attribute),
        groups=tuple(sorted(groups)),
        roles=tuple(roles),
    )
