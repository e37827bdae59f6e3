"""Bus URLs shown and mapped to tenants: :func:`redact_url` and :func:`tenant_vhost`.

Their own module so the RabbitMQ adapter and its admin client use them without importing
:mod:`workbench.messaging.registry`, which opens those adapters.
"""

from __future__ import annotations

from urllib.parse import urlsplit

__all__ = ["redact_url", "tenant_vhost"]


def tenant_vhost(tenant: str) -> str:
    """The RabbitMQ vhost of a tenant: ``wb-<tenant>``."""
    return f"wb-{tenant}"


def redact_url(url: str) -> str:
    """``url`` without its password (for logs and errors)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
    return parts._replace(netloc=netloc).geturl()
