"""The identity directory: users, groups, roles, clients and upstream providers per tenant.

Everything is kept as meta documents in the system tenant's entity store (through the storage
port, so it runs on SQLite and on MongoDB):

=============================  =========================  ===================================
namespace                      key                        document
=============================  =========================  ===================================
``identity.users.<tenant>``    username                   :class:`~.model.User`
``identity.subjects``          user id (token ``sub``)    ``{tenantId, username}``
``identity.groups.<tenant>``   group name                 :class:`~.model.Group`
``identity.clients``           client id                  :class:`~.model.Client`
``identity.upstreams.<t>``     provider name              LDAP or OIDC provider settings
``identity.secrets``           name                       generated server secrets
=============================  =========================  ===================================

Every change is written to the tenant's audit log when the directory has one.
"""

from __future__ import annotations

import re
import secrets
import threading
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from workbench.errors import Conflict, NotFound, ValidationError
from workbench.identity.audit import AuditLog
from workbench.identity.clients import ClientDirectory, check_roles, now_iso
from workbench.identity.model import ROLES, TENANT_OWNERS, Group, User
from workbench.identity.passwords import (
    generate_secret,
    hash_password,
    needs_rehash,
    verify_password,
)
from workbench.storage.base import EntityStore, MetaWrite, WriteBatch
from workbench.tenancy.ids import SYSTEM_TENANT, validate_tenant_id
from workbench.tenancy.registry import TenantRegistry

__all__ = ["ADMIN_USERNAME", "Directory", "ExternalIdentity"]

ADMIN_USERNAME = "admin"

_USERNAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@+:-]{0,127}$")
_GROUP = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._ -]{0,63}$")

_SUBJECTS = "identity.subjects"
_SECRETS = "identity.secrets"


def _users_ns(tenant_id: str) -> str:
    return f"identity.users.{tenant_id}"


def _groups_ns(tenant_id: str) -> str:
    return f"identity.groups.{tenant_id}"


def _upstreams_ns(tenant_id: str) -> str:
    return f"identity.upstreams.{tenant_id}"


@dataclass(frozen=True)
class ExternalIdentity:
    """A user as an upstream provider (LDAP, OIDC) describes it, mapped to workbench roles."""

    source: str
    username: str
    email: str | None = None
    name: str | None = None
    groups: tuple[str, ...] = ()
    roles: tuple[str, ...] = ()
    claims: dict[str, Any] = field(default_factory=dict)


class Directory(ClientDirectory):
    """Users, groups, roles, clients and upstream providers, per tenant."""

    def __init__(
        self, store: EntityStore, registry: TenantRegistry, audit: AuditLog | None = None
    ) -> None:
        self.store = store
        self.registry = registry
        self.audit = audit
        self._lock = threading.RLock()

    @classmethod
    def for_workbench(cls, workbench: Any) -> Directory:
        """The directory of an opened :class:`~workbench.client.local.Workbench`."""
        return cls(workbench.system_store, workbench.registry, AuditLog.for_workbench(workbench))

    # ---------------------------------------------------------------- helpers

    def _check_tenant(self, tenant_id: str) -> str:
        validate_tenant_id(tenant_id, allow_system=True)
        if tenant_id != SYSTEM_TENANT and not self.registry.exists(tenant_id):
            raise NotFound(
                f"tenant {tenant_id!r} does not exist; create it first "
                f"(workbench tenant create {tenant_id})"
            )
        return tenant_id

    def _audit(self, tenant_id: str, actor: str, action: str, target: str, **details: Any) -> None:
        if self.audit is not None:
            self.audit.record(
                tenant_id,
                actor=actor,
                action=action,
                target=target,
                request_id=details.pop("request_id", None),
                details=details,
            )

    def secret(self, name: str) -> str:
        """A server secret generated on first use and kept (session signing, CSRF)."""
        with self._lock:
            doc = self.store.get_meta(_SECRETS, name)
            if doc is None:
                doc = {"value": secrets.token_urlsafe(48), "created": now_iso()}
                self.store.put_meta(_SECRETS, name, doc)
            return str(doc["value"])

    # ---------------------------------------------------------------- users

    def create_user(
        self,
        tenant_id: str,
        username: str,
        *,
        password: str | None = None,
        email: str | None = None,
        name: str | None = None,
        roles: Iterable[str] = (),
        groups: Iterable[str] = (),
        tenants: Iterable[str] = (),
        source: str = "local",
        actor: str = "system",
        request_id: str | None = None,
    ) -> User:
        """Create a user; ``password`` None means the user logs in through an upstream only."""
        self._check_tenant(tenant_id)
        if not _USERNAME.fullmatch(username):
            raise ValidationError(
                f"username {username!r} is invalid: use letters, digits and . _ @ + : - "
                "(up to 128 characters, starting with a letter or digit)"
            )
        group_names = list(groups)
        for group in group_names:
            self.get_group(tenant_id, group)
        for granted in tenants:
            self._check_tenant(granted)
        user = User(
            id=uuid.uuid4().hex,
            tenant_id=tenant_id,
            username=username,
            email=email,
            name=name,
            password_hash=hash_password(password) if password is not None else None,
            roles=check_roles(roles),
            groups=group_names,
            tenants=list(tenants),
            source=source,
            created=now_iso(),
        )
        with self._lock:
            if self.store.get_meta(_users_ns(tenant_id), username) is not None:
                raise Conflict(
                    f"user {username!r} already exists in tenant {tenant_id!r}; choose another "
                    "name or change the existing user"
                )
            self.store.apply(
                WriteBatch(
                    meta=[
                        MetaWrite(_users_ns(tenant_id), username, user.to_document()),
                        MetaWrite(
                            _SUBJECTS, user.id, {"tenantId": tenant_id, "username": username}
                        ),
                    ]
                )
            )
        self._audit(tenant_id, actor, "user.create", username, source=source, request_id=request_id)
        return user

    def get_user(self, tenant_id: str, username: str) -> User:
        doc = self.store.get_meta(_users_ns(tenant_id), username)
        if doc is None:
            raise NotFound(
                f"user {username!r} does not exist in tenant {tenant_id!r}; list users with "
                f"'workbench users list --tenant {tenant_id}'"
            )
        return User.from_document(doc)

    def find_user(self, tenant_id: str, username: str) -> User | None:
        """The user ``username`` of ``tenant_id`` or, failing that, of its nearest ancestor
        (users of a parent tenant may log in to its children)."""
        chain = [tenant_id]
        if tenant_id != SYSTEM_TENANT and self.registry.exists(tenant_id):
            chain += [record.id for record in self.registry.ancestors(tenant_id)]
        for candidate in chain:
            doc = self.store.get_meta(_users_ns(candidate), username)
            if doc is not None:
                return User.from_document(doc)
        return None

    def user_by_id(self, user_id: str) -> User | None:
        ref = self.store.get_meta(_SUBJECTS, user_id)
        if ref is None:
            return None
        doc = self.store.get_meta(_users_ns(ref["tenantId"]), ref["username"])
        return None if doc is None else User.from_document(doc)

    def list_users(self, tenant_id: str) -> list[User]:
        self._check_tenant(tenant_id)
        docs = self.store.list_meta(_users_ns(tenant_id))
        return [User.from_document(docs[k]) for k in sorted(docs)]

    def save_user(self, user: User) -> None:
        self.store.put_meta(_users_ns(user.tenant_id), user.username, user.to_document())

    def update_user(
        self,
        tenant_id: str,
        username: str,
        *,
        enabled: bool | None = None,
        email: str | None = None,
        name: str | None = None,
        actor: str = "system",
        request_id: str | None = None,
    ) -> User:
        with self._lock:
            user = self.get_user(tenant_id, username)
            changed: dict[str, Any] = {}
            if enabled is not None and enabled != user.enabled:
                user.enabled = enabled
                changed["enabled"] = enabled
            if email is not None and email != user.email:
                user.email = email
                changed["email"] = email
            if name is not None and name != user.name:
                user.name = name
                changed["name"] = name
            self.save_user(user)
        if changed:
            action = "user.disable" if changed.get("enabled") is False else "user.update"
            self._audit(tenant_id, actor, action, username, request_id=request_id, **changed)
        return user

    def set_password(
        self,
        tenant_id: str,
        username: str,
        password: str,
        *,
        actor: str = "system",
        request_id: str | None = None,
    ) -> User:
        with self._lock:
            user = self.get_user(tenant_id, username)
            user.password_hash = hash_password(password)
            self.save_user(user)
        self._audit(tenant_id, actor, "user.password", username, request_id=request_id)
        return user

    def delete_user(
        self, tenant_id: str, username: str, *, actor: str = "system", request_id: str | None = None
    ) -> None:
        with self._lock:
            user = self.get_user(tenant_id, username)
            self.store.apply(
                WriteBatch(
                    meta=[
                        MetaWrite(_users_ns(tenant_id), username, None),
                        MetaWrite(_SUBJECTS, user.id, None),
                    ]
                )
            )
        self._audit(tenant_id, actor, "user.delete", username, request_id=request_id)

    def authenticate_password(self, tenant_id: str, username: str, password: str) -> User | None:
        """The enabled local user with this password (found in the tenant or an ancestor),
        else None. Takes as long for unknown users as for wrong passwords."""
        user = self.find_user(tenant_id, username)
        ok = verify_password(user.password_hash if user else None, password)
        if user is None or not ok or not user.enabled:
            return None
        if user.password_hash is not None and needs_rehash(user.password_hash):
            user.password_hash = hash_password(password)
            self.save_user(user)
        return user

    def set_role(
        self,
        tenant_id: str,
        username: str,
        role: str,
        granted: bool,
        *,
        actor: str = "system",
        request_id: str | None = None,
    ) -> User:
        """Grant (``granted``) or revoke ``role`` of the user; audited as role.grant/revoke."""
        check_roles([role])
        with self._lock:
            user = self.get_user(tenant_id, username)
            if granted != (role in user.roles):
                if granted:
                    user.roles.append(role)
                else:
                    user.roles.remove(role)
                self.save_user(user)
        action = "role.grant" if granted else "role.revoke"
        self._audit(tenant_id, actor, action, username, role=role, request_id=request_id)
        return user

    def set_membership(
        self,
        tenant_id: str,
        username: str,
        group: str,
        member: bool,
        *,
        actor: str = "system",
        request_id: str | None = None,
    ) -> User:
        self.get_group(tenant_id, group)
        with self._lock:
            user = self.get_user(tenant_id, username)
            if member and group not in user.groups:
                user.groups.append(group)
            elif not member and group in user.groups:
                user.groups.remove(group)
            self.save_user(user)
        action = "group.add-member" if member else "group.remove-member"
        self._audit(tenant_id, actor, action, group, user=username, request_id=request_id)
        return user

    def grant_tenant(
        self, tenant_id: str, username: str, granted: str, *, actor: str = "system"
    ) -> User:
        """Let the user use ``granted`` (and its children) too."""
        self._check_tenant(granted)
        with self._lock:
            user = self.get_user(tenant_id, username)
            if granted not in user.tenants:
                user.tenants.append(granted)
                self.save_user(user)
        self._audit(tenant_id, actor, "user.grant-tenant", username, tenant=granted)
        return user

    def remember_consent(self, user: User, client_id: str, scopes: Iterable[str]) -> None:
        with self._lock:
            fresh = self.get_user(user.tenant_id, user.username)
            fresh.consents[client_id] = sorted(set(fresh.consents.get(client_id, [])) | set(scopes))
            self.save_user(fresh)

    # ---------------------------------------------------------------- roles and tenants

    def effective_roles(self, user: User) -> list[str]:
        """The user's own roles and those of its groups (and their parent groups)."""
        roles = set(user.roles)
        seen: set[str] = set()
        queue = list(user.groups)
        while queue:
            name = queue.pop()
            if name in seen:
                continue
            seen.add(name)
            doc = self.store.get_meta(_groups_ns(user.tenant_id), name)
            if doc is None:
                continue
            group = Group.from_document(doc)
            roles.update(group.roles)
            queue.extend(group.parents)
        return sorted(roles)

    def allowed_tenants(self, home: str, granted: Iterable[str] = ()) -> list[str]:
        """``home`` and ``granted`` tenants with all their descendants (tenant cascading)."""
        out: list[str] = []
        for tenant_id in [home, *granted]:
            if tenant_id in out:
                continue
            if tenant_id != SYSTEM_TENANT and not self.registry.exists(tenant_id):
                continue  # a grant of a deleted tenant
            out.append(tenant_id)
            out.extend(t for t in self.registry.descendants(tenant_id) if t not in out)
        return out

    def user_tenants(self, user: User) -> list[str]:
        return self.allowed_tenants(user.tenant_id, user.tenants)

    # ---------------------------------------------------------------- groups

    def ensure_builtin_groups(self, tenant_id: str) -> None:
        """Create the tenant's ``TenantOwners`` group (holding every role) if it is missing."""
        with self._lock:
            if self.store.get_meta(_groups_ns(tenant_id), TENANT_OWNERS) is None:
                group = Group(
                    tenant_id,
                    TENANT_OWNERS,
                    roles=list(ROLES),
                    description="Owners of the tenant: every role",
                )
                self.store.put_meta(_groups_ns(tenant_id), TENANT_OWNERS, group.to_document())

    def create_group(
        self,
        tenant_id: str,
        name: str,
        *,
        roles: Iterable[str] = (),
        parents: Iterable[str] = (),
        description: str | None = None,
        actor: str = "system",
    ) -> Group:
        self._check_tenant(tenant_id)
        if not _GROUP.fullmatch(name):
            raise ValidationError(
                f"group name {name!r} is invalid: letters, digits, space and . _ - "
                "(up to 64 characters)"
            )
        parent_names = list(parents)
        for parent in parent_names:
            self.get_group(tenant_id, parent)
        group = Group(tenant_id, name, check_roles(roles), parent_names, description)
        with self._lock:
            if self.store.get_meta(_groups_ns(tenant_id), name) is not None:
                raise Conflict(f"group {name!r} already exists in tenant {tenant_id!r}")
            self.store.put_meta(_groups_ns(tenant_id), name, group.to_document())
        self._audit(tenant_id, actor, "group.create", name, roles=sorted(group.roles))
        return group

    def get_group(self, tenant_id: str, name: str) -> Group:
        if name == TENANT_OWNERS:
            self.ensure_builtin_groups(tenant_id)
        doc = self.store.get_meta(_groups_ns(tenant_id), name)
        if doc is None:
            raise NotFound(f"group {name!r} does not exist in tenant {tenant_id!r}")
        return Group.from_document(doc)

    def list_groups(self, tenant_id: str) -> list[Group]:
        self.ensure_builtin_groups(tenant_id)
        docs = self.store.list_meta(_groups_ns(tenant_id))
        return [Group.from_document(docs[k]) for k in sorted(docs)]

    # ---------------------------------------------------------------- upstream providers

    def put_upstream(
        self, tenant_id: str, name: str, config: dict[str, Any], *, actor: str = "system"
    ) -> None:
        """Add or replace an upstream provider (``config["kind"]``: ``ldap`` or ``oidc``)."""
        self._check_tenant(tenant_id)
        if config.get("kind") not in ("ldap", "oidc"):
            raise ValidationError("an upstream provider's kind must be 'ldap' or 'oidc'")
        if not re.fullmatch(r"[a-z][a-z0-9-]{0,31}", name):
            raise ValidationError(
                f"upstream name {name!r} is invalid: lower-case letters, digits and '-'"
            )
        self.store.put_meta(_upstreams_ns(tenant_id), name, dict(config, name=name))
        self._audit(tenant_id, actor, "upstream.put", name, kind=config["kind"])

    def list_upstreams(self, tenant_id: str) -> list[dict[str, Any]]:
        docs = self.store.list_meta(_upstreams_ns(tenant_id))
        return [docs[k] for k in sorted(docs)]

    def get_upstream(self, tenant_id: str, name: str) -> dict[str, Any]:
        doc = self.store.get_meta(_upstreams_ns(tenant_id), name)
        if doc is None:
            raise NotFound(f"upstream provider {name!r} does not exist in tenant {tenant_id!r}")
        return doc

    def provision(self, tenant_id: str, identity: ExternalIdentity) -> User:
        """The user for an upstream identity: created on first login, and its email, name and
        upstream-mapped roles refreshed on every later one."""
        username = identity.username
        with self._lock:
            doc = self.store.get_meta(_users_ns(tenant_id), username)
            if doc is None:
                return self.create_user(
                    tenant_id,
                    username,
                    email=identity.email,
                    name=identity.name,
                    roles=identity.roles,
                    source=identity.source,
                    actor=f"upstream:{identity.source}",
                )
            user = User.from_document(doc)
            if user.source != identity.source:
                raise Conflict(
                    f"user {username!r} of tenant {tenant_id!r} is a {user.source} user; the "
                    f"{identity.source} provider cannot log in as it"
                )
            user.email = identity.email or user.email
            user.name = identity.name or user.name
            user.roles = sorted(set(check_roles(identity.roles)))
            self.save_user(user)
            return user

    # ---------------------------------------------------------------- bootstrap

    def bootstrap(self, admin_password: str | None = None) -> str | None:
        """Create the system tenant's admin (in TenantOwners) if there is none.

        Returns the generated password when one was generated (to be shown once), else None.
        """
        self.ensure_builtin_groups(SYSTEM_TENANT)
        with self._lock:
            if self.store.get_meta(_users_ns(SYSTEM_TENANT), ADMIN_USERNAME) is not None:
                return None
            generated = admin_password is None
            password = admin_password if admin_password is not None else generate_secret(18)
            self.create_user(
                SYSTEM_TENANT,
                ADMIN_USERNAME,
                password=password,
                name="Platform administrator",
                groups=[TENANT_OWNERS],
                actor="bootstrap",
            )
        return password if generated else None
