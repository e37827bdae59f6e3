"""The Asset Repository service: per-tenant GraphQL, REST, stream endpoints and the playground.

:mod:`.app` assembles the application; one module per route group beside it.
"""
