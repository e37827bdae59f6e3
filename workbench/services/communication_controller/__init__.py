"""The Communication Controller service: the adapter hub, configuration and data-flow routes.

:mod:`.app` assembles the application; :mod:`.hub` speaks the adapters' WebSocket protocol,
:mod:`.config` reads and writes the tenant's communication entities, :mod:`.dataflows` holds
the data-flow and trigger routes.
"""
