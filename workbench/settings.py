"""The one typed settings tree (environment prefix ``WORKBENCH_``)."""

from __future__ import annotations

import functools
import os
from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["Settings", "current_settings", "default_home"]


def default_home() -> Path:
    return Path("~/.workbench").expanduser()


class Settings(BaseSettings):
    """Platform settings; every field can be set as ``WORKBENCH_<NAME>`` in the environment."""

    model_config = SettingsConfigDict(env_prefix="WORKBENCH_", extra="ignore")

    home: Path = Field(
        default_factory=default_home,
        description="Data directory holding the system tenant and every embedded tenant backend "
        "(overridden by --data-dir).",
    )
    log_level: str = Field(default="INFO", description="Logging level of the CLI and services.")
    log_format: str = Field(
        default="text", description="'text' for people, 'json' for log collectors."
    )
    dev_static_token: bool = Field(
        default=False,
        description="Development only: the Asset Repository accepts WORKBENCH_API_TOKEN as a "
        "static bearer token instead of verifying Identity JWTs (logs a warning on start).",
    )
    api_token: SecretStr | None = Field(
        default=None,
        description="Static bearer token the Asset Repository accepts until the Identity service "
        "issues JWTs (WORKBENCH_API_TOKEN); without it the service only starts with --no-auth.",
    )
    api_token_tenants: str = Field(
        default="*",
        description="Comma-separated tenant ids the static token may use; '*' for every tenant.",
    )
    service_host: str = Field(
        default="127.0.0.1",
        description="Interface the services bind to (loopback unless deliberately exposed).",
    )
    asset_repository_port: int = Field(
        default=5001, description="Port of the Asset Repository (GraphQL, REST bulk)."
    )

    # --- Identity service (OAuth 2.0 / OpenID Connect provider, workbench.identity) ---
    identity_port: int = Field(default=5003, description="Port of the Identity service.")
    identity_issuer: str = Field(
        default="",
        description="Issuer URL written into tokens and discovery (`iss`); default "
        "http://<service_host>:<identity_port>. Must be the URL clients reach the service at.",
    )
    identity_audience: str = Field(
        default="workbench-api",
        description="Audience (`aud`) of access tokens; every service checks it.",
    )
    identity_access_token_ttl: int = Field(
        default=900, description="Lifetime of access tokens in seconds."
    )
    identity_refresh_token_ttl: int = Field(
        default=30 * 24 * 3600,
        description="Lifetime of refresh tokens in seconds (each use rotates the token).",
    )
    identity_key_rotation_days: int = Field(
        default=30,
        description="Signing keys older than this are rotated at start-up; JWKS keeps the "
        "previous key so tokens it signed stay valid until they expire.",
    )
    identity_url: str = Field(
        default="",
        description="Where services fetch the Identity service's JWKS to verify tokens "
        "(default: the issuer).",
    )
    admin_password: SecretStr | None = Field(
        default=None,
        description="Password of the bootstrap admin created on the Identity service's first "
        "start (WORKBENCH_ADMIN_PASSWORD); without it a random one is printed once.",
    )
    identity_login_max_failures: int = Field(
        default=5,
        description="Failed logins (per account and per client address) before the login "
        "form is throttled for a while.",
    )

    # --- Admin Panel (workbench.admin, workbench serve admin) ---
    admin_port: int = Field(default=5005, description="Port of the Admin Panel.")
    admin_public_url: str = Field(
        default="",
        description="URL browsers reach the Admin Panel at (its OAuth redirect is <url>/login); "
        "default http://<service_host>:<admin_port>.",
    )
    admin_metrics_retention_hours: float = Field(
        default=24.0,
        description="How long the Admin Panel keeps the service metrics it scrapes "
        "(<data>/admin/metrics.db).",
    )
    admin_scrape_interval: float = Field(
        default=5.0, description="Seconds between the Admin Panel's scrapes of /metrics."
    )
    admin_prometheus_url: str | None = Field(
        default=None,
        description="A Prometheus server's URL: the Admin Panel's monitoring plots query its "
        "HTTP API instead of the panel's own scraped store (production-length history).",
    )
    admin_num_procs: int = Field(
        default=1,
        ge=0,
        description="Server processes of the Admin Panel (forked, Linux; 0: one per core; "
        "`--num-procs` overrides it). Sessions are spread over them.",
    )

    # --- Where the services find each other (`workbench up` exports the ports it chose) ---
    api_url: str = Field(
        default="",
        description="The Asset Repository's URL as the hub's notebook servers and the Admin "
        "Panel reach it; default http://<service_host>:<asset_repository_port>.",
    )
    communication_controller_url: str = Field(
        default="",
        description="The Communication Controller's URL for the Admin Panel's Operations page; "
        "default: the one `workbench up` runs (communication_controller_port), else none.",
    )
    communication_controller_port: int | None = Field(
        default=None,
        description="Port of the Communication Controller `workbench up` runs (set by up).",
    )
    bot_service_url: str = Field(
        default="",
        description="The Bot Service's URL for the Admin Panel's Operations page and the "
        "notebooks' promotion; default: the one `workbench up` runs (bot_service_port), else none.",
    )
    bot_service_port: int | None = Field(
        default=None, description="Port of the Bot Service `workbench up` runs (set by up)."
    )

    # --- JupyterHub (hub_config/: jupyterhub_config.py, kubernetes_config.py) ---
    hub_url: str = Field(
        default="",
        description="JupyterHub's URL for the Admin Panel's service list; default: the one "
        "`workbench up` runs (hub_port), else none.",
    )
    hub_port: int | None = Field(
        default=None, description="Port of the hub's proxy `workbench up` runs (set by up)."
    )
    hub_bind_url: str = Field(
        default="http://127.0.0.1:8000",
        description="One machine: the public URL the hub's proxy listens on (`workbench serve "
        "hub --port` sets it).",
    )
    hub_api_port: int = Field(
        default=8081, description="One machine: the hub's internal API port (loopback)."
    )
    hub_proxy_api_port: int = Field(
        default=8001, description="One machine: configurable-http-proxy's API port (loopback)."
    )
    hub_public_url: str = Field(
        default="http://127.0.0.1:8000",
        description="Kubernetes: the hub's public URL (https://<host>; TLS ends at the ingress).",
    )
    hub_client_id: str = Field(
        default="jupyterhub",
        description="The hub's OAuth client in the system tenant (registered by `workbench up`).",
    )
    hub_client_secret: SecretStr | None = Field(
        default=None,
        description="The hub client's secret; one machine default: <home>/secrets/"
        "hub-client-secret (written by `workbench up`).",
    )
    hub_default_tenant: str = Field(
        default="", description="Tenant pre-filled on the hub's login page."
    )
    hub_isolation: str = Field(
        default="auto",
        description="One machine: how tenant servers are isolated: 'auto' (own accounts as "
        "root, else bubblewrap), 'accounts', 'bubblewrap' or 'none'.",
    )
    hub_kernel_python: str = Field(
        default="",
        description="One machine: interpreter of the tenant servers and kernels (default: "
        "/opt/workbench-kernels/bin/python of `make kernel-venv` when it exists, else the hub's).",
    )
    hub_work_root: str = Field(
        default="",
        description="One machine: root of the tenant servers' working directories (default "
        "/var/lib/workbench/hub-work/<hash> as root, else <home>/hub-work).",
    )
    hub_notebooks: str = Field(
        default="",
        description="One machine: folder of notebooks copied into new working directories "
        "(default: the project's notebooks/).",
    )
    hub_notebook_image: str = Field(
        default="mesh-workbench/notebook:latest",
        description="Kubernetes: the image of the tenant servers' pods.",
    )

    # --- Adapters (workbench serve adapter: communication nodes on the adapter's machine) ---
    adapter_credentials: str = Field(
        default="",
        description="Path of the adapter's credentials file: a JSON object "
        '{"<configuration name>": {"password": ..., "caFile": ...}} merged over the '
        "configuration entities the protocol nodes use (secrets stay off the platform).",
    )
    adapter_archive_dir: str = Field(
        default="",
        description="Folder SaveTimeRangeStreamDataInArchive@1 writes stream archives under "
        "(default ./archives of the adapter's working directory).",
    )
    node_plugins: str = Field(
        default="",
        description="Python files (separated by the path separator, ':') whose @register_node "
        "classes join the process's node registry when it is first built (a promoted adapter "
        "notebook's custom nodes; the local adapter pool sets it).",
    )
    execute_python_bwrap: str = Field(
        default="/usr/bin/bwrap", description="ExecutePython@1: the bubblewrap executable."
    )
    execute_python_allow_unsandboxed: bool = Field(
        default=False,
        description="ExecutePython@1: where bubblewrap cannot run, run the code in a plain "
        "subprocess (same limits, but with network and file access) instead of refusing it.",
    )
    execute_python_max_timeout_seconds: float = Field(
        default=300.0, description="ExecutePython@1: the largest timeoutSeconds a node may ask for."
    )
    execute_python_max_memory_mb: int = Field(
        default=2048, description="ExecutePython@1: the largest memoryLimitMb a node may ask for."
    )
    execute_python_max_output_bytes: int = Field(
        default=16 * 1024 * 1024,
        description="ExecutePython@1: the largest JSON answer a worker may give.",
    )
    execute_python_file_size_mb: int = Field(
        default=64,
        description="ExecutePython@1: the largest file the code may write (in its private /tmp).",
    )

    # --- Message bus (workbench.messaging) ---
    bus_url: str = Field(
        default="",
        description="Message bus of every tenant: 'memory://' (one process), 'sqlite:///PATH' "
        "(embedded log shared by the processes of one machine; '{tenant}' in PATH is replaced), "
        "'amqp://USER:PASS@HOST:PORT/' (RabbitMQ, vhost wb-<tenant>). Empty: memory:// for a "
        "single service; `workbench up` sets the embedded log under the data directory.",
    )
    rabbitmq_management_url: str = Field(
        default="",
        description="RabbitMQ management HTTP API (http://USER:PASS@HOST:15672) used to create "
        "tenant vhosts wb-<tenant> and their users.",
    )

    # --- Request limits (workbench.limits; defaults fit a 2-core machine) ---
    max_request_bytes: int = Field(
        default=64 * 2**20,
        description="Largest request body a service accepts, in bytes (uploads of CK libraries, "
        "runtime files and stream points included); larger ones get 413.",
    )
    max_attribute_bytes: int = Field(
        default=2**20,
        description="Largest attribute value (a string, a string-array item, base64 binary) in "
        "UTF-8 bytes; a larger one is refused naming the attribute and this limit.",
    )
    graphql_max_body_bytes: int = Field(
        default=2**20, description="Largest GraphQL request body (or GET query), in bytes."
    )
    graphql_max_tokens: int = Field(
        default=20_000,
        description="Most lexical tokens in one GraphQL document (checked while parsing).",
    )
    graphql_max_fields: int = Field(
        default=1_000,
        description="Most field selections in one GraphQL document (checked before validation, "
        "whose cost grows with the square of repeated fields).",
    )
    graphql_max_depth: int = Field(
        default=20,
        description="Deepest nesting of fields in a GraphQL operation (an association hop is "
        "two levels: the association and its items).",
    )
    graphql_max_aliases: int = Field(
        default=100, description="Most aliased fields in one GraphQL operation."
    )
    graphql_max_cost: int = Field(
        default=50_000,
        description="Budget of a GraphQL operation's estimated cost: every field counts once per "
        "item its enclosing lists may return (`first`, default WORKBENCH_GRAPHQL_DEFAULT_PAGE, "
        "multiplied along the nesting). A costlier operation is rejected before it runs.",
    )
    graphql_default_page: int = Field(
        default=100,
        description="Page size the cost estimate assumes for a list without `first`.",
    )
    graphql_timeout_s: float = Field(
        default=30.0,
        description="Longest a GraphQL query may execute, in seconds; then it is stopped (503).",
    )
    export_timeout_s: float = Field(
        default=300.0, description="Longest a runtime export may run, in seconds."
    )
    streams_sql_timeout_s: float = Field(
        default=30.0,
        description="Longest a user SQL statement over stream data may run, in seconds; then "
        "it is stopped.",
    )
    streams_sql_max_rows: int = Field(
        default=100_000, description="Most rows a user SQL statement over stream data returns."
    )
    streams_sql_max_bytes: int = Field(
        default=64 * 2**20,
        description="Largest result (bytes, in Arrow form) of a user SQL statement over stream "
        "data.",
    )
    heavy_cost: int = Field(
        default=10_000,
        description="GraphQL operations estimated at this cost or more count as heavy requests "
        "(as do runtime exports and imports and whole-range stream reads).",
    )
    heavy_per_tenant: int = Field(
        default=2,
        description="Heavy requests one tenant may run at once per service process; more are "
        "answered 429 with Retry-After.",
    )
    retry_after_s: int = Field(
        default=5, description="Seconds a 429 answer's Retry-After header asks clients to wait."
    )

    # --- Backends at scale (platform/kubernetes): shared by every replica ---
    system_entities_url: str = Field(
        default="",
        description="Entity store of the system tenant (tenant registry, identity data): "
        "'mongodb://HOST/wb_system?replicaSet=rs0' so every replica shares it; empty: "
        "sqlite under the data directory (one machine).",
    )
    tenant_entities_url: str = Field(
        default="",
        description="Entity store URL given to a new tenant unless it names one: '{tenant}' is "
        "replaced by the tenant id, '{tenant_sql}' by it with '-' as '_' (e.g. "
        "'mongodb://HOST/wb_{tenant}?replicaSet=rs0'); empty: sqlite under the data directory.",
    )
    tenant_streams_url: str = Field(
        default="",
        description="Stream store URL given to a new tenant unless it names one, with the same "
        "placeholders (e.g. 'crate://HOST:4200/wb_{tenant_sql}'); empty: duckdb under the data "
        "directory.",
    )

    def asset_repository_url(self, scheme: str = "http") -> str:
        """The Asset Repository's URL: ``api_url``, or derived from host and port."""
        url = self.api_url or f"{scheme}://{self.service_host}:{self.asset_repository_port}"
        return url.rstrip("/")

    def neighbour_url(self, service: str, scheme: str = "http") -> str | None:
        """``<service>_url``, else the one ``workbench up`` runs beside this process
        (``<service>_port``), else None: ``service`` is hub, communication_controller or
        bot_service."""
        url: str = getattr(self, f"{service}_url")
        if url:
            return url.rstrip("/")
        port: int | None = getattr(self, f"{service}_port")
        return f"{scheme}://{self.service_host}:{port}" if port else None

    def issuer_url(self) -> str:
        """The Identity service's issuer URL (explicit, or derived from host and port)."""
        if self.identity_issuer:
            return self.identity_issuer.rstrip("/")
        return f"http://{self.service_host}:{self.identity_port}"


def current_settings() -> Settings:
    """The settings of the environment as it is now, built once per distinct set of
    ``WORKBENCH_*`` variables (and ``HOME``, which the default ``home`` follows): for code that
    reads a setting per message or per request (building :class:`Settings` parses every field,
    milliseconds). Do not modify the result; ``model_copy(update=...)`` gives a changed copy."""
    variables = tuple(
        sorted(
            (k, v)
            for k, v in os.environ.items()
            if k == "HOME" or k.upper().startswith("WORKBENCH_")
        )
    )
    return _settings_of(variables)


@functools.lru_cache(maxsize=16)
def _settings_of(variables: tuple[tuple[str, str], ...]) -> Settings:
    return Settings()
