"""The Identity service: OAuth 2.0 / OpenID Connect provider, its pages and management API.

:mod:`.app` assembles the application from :mod:`.oauth` (protocol endpoints), :mod:`.pages`
(browser pages), :mod:`.management` (REST API) and :mod:`.service` (what they share).
"""
