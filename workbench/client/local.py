"""The in-process client: ``workbench.open(data_dir)`` → :class:`Workbench`.

A :class:`Workbench` owns the data directory: the system tenant's store (tenant registry) and
every tenant opened from it. ``wb.tenant("acme")`` gives a :class:`Tenant` with ``ck`` (its CK
catalog), ``entities`` (the runtime service) and ``streams(type_id)``.
"""

from __future__ import annotations

import builtins
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from workbench.ck.model import CkModel
from workbench.client.tenant_api import EntityReads, TenantApi
from workbench.client.tenant_queries import TenantQueries
from workbench.client.tenant_streams import TenantStreams
from workbench.errors import ValidationError
from workbench.runtime.secrets import KEY_FILE_NAME, SecretCipher
from workbench.runtime.service import EntityService
from workbench.settings import Settings
from workbench.storage.backends import open_entity_store, open_stream_store
from workbench.storage.base import EntityStore
from workbench.tenancy.catalog import CkCatalog
from workbench.tenancy.ids import validate_tenant_id
from workbench.tenancy.registry import ENTITIES_URL, STREAMS_URL, TenantRecord, TenantRegistry

if TYPE_CHECKING:
    from workbench.client.tenant_streams import TenantStreams
    from workbench.graphql import SchemaCache
    from workbench.messaging.base import MessageBus
    from workbench.streams.service import StreamService, TypeStreams

__all__ = ["Tenant", "Tenants", "Workbench", "open_workbench"]


class Tenant:
    """One tenant's data: CK catalog, runtime entities and stream data."""

    def __init__(self, workbench: Workbench, record: TenantRecord) -> None:
        self._workbench = workbench
        self.id = record.id
        self.record = record
        # re-entrant: building the stream service reads ``ck`` and ``entities`` under it
        self._lock = threading.RLock()
        self._entity_store: EntityStore | None = None
        self._stream_service: StreamService | None = None
        self._catalog: CkCatalog | None = None
        self._entities: EntityService | None = None

    @property
    def config(self) -> dict[str, Any]:
        """Effective configuration (own keys over those inherited from ancestors)."""
        return self._workbench.registry.effective_config(self.id)

    @property
    def home(self) -> Path:
        """The data directory this tenant was opened from."""
        return self._workbench.home

    @property
    def files_dir(self) -> Path:
        """The tenant's file area (embedded databases, notebooks, artifacts)."""
        return self._workbench.registry.tenant_dir(self.id)

    @property
    def entity_store(self) -> EntityStore:
        with self._lock:
            if self._entity_store is None:
                self._entity_store = open_entity_store(self.record.config[ENTITIES_URL])
            return self._entity_store

    @property
    def ck(self) -> CkCatalog:
        """The tenant's Construction Kit catalog (import, validate, list, model)."""
        if self._catalog is None:
            registry = self._workbench.registry
            self._catalog = CkCatalog(
                self.id,
                self.entity_store,
                lambda: [self._workbench.tenant(a.id).ck for a in registry.ancestors(self.id)],
            )
        return self._catalog

    @property
    def model(self) -> CkModel:
        return self.ck.model()

    @property
    def entities(self) -> EntityService:
        """Runtime entities: create, update, delete, get, find, associations, import/export."""
        if self._entities is None:
            events = self._workbench.events
            if events is None:
                self._entities = EntityService(self.entity_store, self.ck.model)
            else:
                from workbench.messaging.entity_events import PublishingEntityService

                self._entities = PublishingEntityService(
                    self.entity_store, self.ck.model, tenant_id=self.id, bus=events
                )
            self._entities.secret_cipher = self._workbench.secret_cipher
        return self._entities

    @property
    def stream_service(self) -> StreamService:
        with self._lock:
            if self._stream_service is None:
                from workbench.streams.service import StreamService

                store = open_stream_store(self.record.config[STREAMS_URL])
                self._stream_service = StreamService(
                    self.ck.model, self.entities.entity_types, store
                )
            return self._stream_service

    def graphql(
        self,
        query: str,
        variables: Mapping[str, Any] | None = None,
        *,
        operation_name: str | None = None,
        raw: bool = False,
    ) -> Any:
        """Run a GraphQL query or mutation in process (the tenant's generated schema).

        Returns a DataFrame when the result is a list, else the ``data`` dict (``raw=True``:
        always the dict); GraphQL errors raise the matching WorkbenchError."""
        from workbench.client.results import graphql_result, raise_graphql_errors

        result = self._workbench.schemas().execute(
            self, query, variables, operation_name=operation_name
        )
        raise_graphql_errors([e.formatted for e in result.errors or []])
        return result.data if raw else graphql_result(result.data)

    @property
    def streams(self) -> TenantStreams[TypeStreams]:
        """``streams(type_id)``: stream data of one CK type (``write``, ``read``,
        ``aggregate``, ``downsample``); ``streams.sql(query)``: read-only SQL over them all."""

        def sql(query: str) -> Any:
            from workbench.streams.sql import SqlLimits, run_stream_sql

            limits = SqlLimits.from_settings(Settings())
            return run_stream_sql(self.stream_service.store, query, limits)

        def for_type(ck_type_id: str) -> TypeStreams:  # opens the store only when used
            return self.stream_service.for_type(ck_type_id)

        return TenantStreams(for_type, sql)

    @property
    def queries(self) -> TenantQueries:
        """Persisted queries (System/SimpleRtQuery, System/StreamDataQuery): ``run(name)``."""
        from workbench.runtime.queries import run_query

        def run(name_or_rt_id: str, **overrides: Any) -> tuple[list[str], list[Any]]:
            result = run_query(self, name_or_rt_id, **overrides)
            return result.columns, result.rows

        return TenantQueries(run)

    def drop_backends(self) -> None:
        """Delete every piece of this tenant's data (used by tenant deletion)."""
        self.entity_store.drop()
        self._entity_store = None
        if self._stream_service is not None:
            self._stream_service.store.drop()
        else:
            open_stream_store(self.record.config[STREAMS_URL]).drop()
        self._stream_service = None

    def close(self) -> None:
        with self._lock:
            if self._entity_store is not None:
                self._entity_store.close()
                self._entity_store = None
            if self._stream_service is not None:
                self._stream_service.store.close()
                self._stream_service = None

    def __repr__(self) -> str:
        return f"<Tenant {self.id}>"


#: mypy checks that the in-process tenant offers the SDK's API (see workbench.client.tenant_api)
_TENANT_API: type[TenantApi] = Tenant
_ENTITY_READS: type[EntityReads] = EntityService


class Tenants:
    """``wb.tenants``: create, list, get and delete tenants."""

    def __init__(self, workbench: Workbench) -> None:
        self._workbench = workbench

    def create(
        self,
        tenant_id: str,
        *,
        parent: str | None = None,
        description: str | None = None,
        config: dict[str, Any] | None = None,
    ) -> Tenant:
        record = self._workbench.registry.create(
            tenant_id, parent=parent, description=description, config=config
        )
        tenant = self._workbench.tenant(record.id)
        tenant.ck.model()  # fail now, not later, if the backend is unreachable
        return tenant

    def list(self) -> builtins.list[TenantRecord]:
        return self._workbench.registry.list()

    def get(self, tenant_id: str) -> TenantRecord:
        return self._workbench.registry.get(tenant_id)

    def delete(self, tenant_id: str, *, confirm: bool = False) -> None:
        """Delete the tenant and all its data. ``confirm=True`` is required."""
        if not confirm:
            raise ValidationError(
                f"deleting tenant {tenant_id!r} erases all its data; confirm it "
                "(confirm=True in Python, --yes on the command line)"
            )
        registry = self._workbench.registry
        registry.check_removable(tenant_id)
        tenant = self._workbench.tenant(tenant_id)
        tenant.drop_backends()
        tenant.close()
        self._workbench.forget(tenant_id)
        registry.remove(tenant_id)


class Workbench:
    """The platform's data directory, opened in this process."""

    def __init__(self, home: Path) -> None:
        self.home = home.expanduser().resolve()
        self.home.mkdir(parents=True, exist_ok=True)
        settings = Settings()
        self._system_store = open_entity_store(
            settings.system_entities_url or f"sqlite:///{self.home / 'system' / 'entities.db'}"
        )
        templates = {
            ENTITIES_URL: settings.tenant_entities_url,
            STREAMS_URL: settings.tenant_streams_url,
        }
        self.registry = TenantRegistry(self._system_store, self.home, url_templates=templates)
        self.tenants = Tenants(self)
        self._tenants: dict[str, Tenant] = {}
        self._schemas: SchemaCache | None = None
        self._lock = threading.Lock()
        #: where in-process entity writes publish their events (None: nowhere)
        self.events: MessageBus | None = None
        #: encrypts the secret attributes of every tenant (the platform's key file)
        self.secret_cipher = SecretCipher(self.home / "secrets" / KEY_FILE_NAME)

    def publish_events_to(self, bus: MessageBus | None) -> None:
        """Publish an event per entity written in this process to ``bus`` (for example
        ``TenantBuses(url)``) so subscriptions served by other processes see the changes;
        applies to tenants opened from now on."""
        self.events = bus

    def schemas(self) -> SchemaCache:
        """The process's GraphQL schema cache (built lazily; needs the ``api`` extra)."""
        with self._lock:
            if self._schemas is None:
                from workbench.graphql import SchemaCache

                self._schemas = SchemaCache()
            return self._schemas

    @property
    def system_store(self) -> EntityStore:
        return self._system_store

    def tenant(self, tenant_id: str) -> Tenant:
        """The tenant ``tenant_id`` (NotFound when it does not exist)."""
        validate_tenant_id(tenant_id, allow_system=True)
        with self._lock:
            cached = self._tenants.get(tenant_id)
        if cached is not None:
            return cached
        record = self.registry.get(tenant_id)
        with self._lock:
            return self._tenants.setdefault(tenant_id, Tenant(self, record))

    def forget(self, tenant_id: str) -> None:
        with self._lock:
            self._tenants.pop(tenant_id, None)

    def close(self) -> None:
        with self._lock:
            tenants = list(self._tenants.values())
            self._tenants.clear()
        for tenant in tenants:
            tenant.close()
        self._system_store.close()
        if self.events is not None:
            self.events.close()
            self.events = None

    def __enter__(self) -> Workbench:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<Workbench {self.home}>"


def open_workbench(data_dir: str | Path | None = None) -> Workbench:
    """Open the data directory ``data_dir`` (default ``WORKBENCH_HOME`` or ``~/.workbench``)."""
    home = Path(data_dir) if data_dir is not None else Settings().home
    if str(home).strip() == "":
        raise ValidationError("data directory is empty; pass a path or set WORKBENCH_HOME")
    return Workbench(home)
