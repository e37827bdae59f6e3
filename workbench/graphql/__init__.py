"""The per-tenant GraphQL API (GRAPHQL_API.md), generated from the tenant's CK model.

>>> from workbench.graphql import SchemaCache            # doctest: +SKIP
>>> schemas = SchemaCache(bus=LocalMessageBus())        # doctest: +SKIP
>>> schemas.execute(tenant, "{ runtime { rtDemoEnergySite { items { name } } } }")  # doctest: +SKIP

Only this package (and the web service) imports graphql-core and Strawberry; the core never does.
"""

from workbench.graphql.cache import SchemaCache
from workbench.graphql.context import GraphQLContext
from workbench.graphql.schema import TenantSchema, build_schema

__all__ = ["GraphQLContext", "SchemaCache", "TenantSchema", "build_schema"]
