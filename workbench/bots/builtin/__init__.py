"""The logic of the built-in bots (``notebooks/bots/``), one module per job, so the notebooks
stay a parameters cell and a call, and the jobs are unit-tested without a kernel.

Every function takes a tenant client, in-process (:class:`workbench.client.local.Tenant`) or
remote (:class:`workbench.client.remote.RemoteTenant`, what a bot run's ``wb`` is), and returns
what it did as plain data, which the notebook declares with ``wb.bot.output(...)``.

========================  ===================================================================
module                    job
========================  ===================================================================
``selection``             entities of a type matching a JSON filter (shared by the jobs)
``transfer``              CK and runtime export/import by filter; stream export/import
``fixups``                ``System.Bot/Fixup`` entities run once, in order, outcome recorded
``service_hooks``         ``System.Bot/ServiceHook``: POST the matching rtIds to a URL
``aggregation``           ``System.Bot/AttributeAggregateConfiguration``: values of related
                          entities combined into an attribute
``cleaning``              trim, normalise, fill defaults, remove duplicates
``rollups``               stream points older than N replaced by interval aggregates; retention
``anonymisation``         pseudonymise attributes (reversible with a tenant key) or hash them
``users``                 disable inactive Identity users, keep role members as configured
``report``                an HTML report with HoloViews plots (offline) and its PDF
``files``                 delete old files no entity references
========================  ===================================================================
"""
