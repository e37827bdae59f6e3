"""The GraphQL playground (GraphiQL) of a tenant, served entirely by this service.

The page loads React, ReactDOM and GraphiQL from ``/static/`` (vendored from npm, see
``static/README.md``) and a small ``playground.js`` that points GraphiQL at the tenant's
endpoint. A Content-Security-Policy limits the page to this origin, so nothing is fetched from
the internet even if a vendored file tried to.
"""

from __future__ import annotations

import html
from importlib.resources import files
from pathlib import Path

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.staticfiles import StaticFiles

__all__ = ["STATIC_DIR", "playground_html", "router", "static_files"]

STATIC_DIR = Path(str(files("workbench.services") / "static"))

#: the page may talk to its own origin only (WebSocket included); GraphiQL sets inline styles
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; font-src 'self' data:; connect-src 'self'; "
    "frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
)

SAMPLE_QUERY = """\
# Entities of a type (and its subtypes), keyset-paged. Press the play button (Ctrl-Enter).
# The Docs panel on the left lists every type generated from this tenant's CK model.
query {
  constructionKit { models { modelId } }
  runtime {
    runtimeEntities(first: 10) {
      items { rtId ckTypeId rtWellKnownName }
      pageInfo { hasNextPage endCursor }
    }
  }
}
"""

router = APIRouter(tags=["playground"])


def playground_html(endpoint: str, *, needs_token: bool, static_prefix: str = "/static") -> str:
    """The playground page for the GraphQL ``endpoint`` (a path on this origin)."""
    headers = '{\n  "Authorization": "Bearer <your API token>"\n}' if needs_token else ""
    attributes = {
        "src": f"{static_prefix}/playground.js",
        "data-endpoint": endpoint,
        "data-default-query": SAMPLE_QUERY,
        "data-default-headers": headers,
    }
    script = " ".join(
        f'{key}="{html.escape(value, quote=True)}"' for key, value in attributes.items()
    )
    return f"""<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>GraphQL playground · {html.escape(endpoint)}</title>
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <link rel="icon" href="data:,">
  <link rel="stylesheet" href="{static_prefix}/graphiql.min.css">
  <style>html, body, #graphiql {{ height: 100%; margin: 0; }}</style>
</head>
<body>
  <div id="graphiql">Loading the playground…</div>
  <script src="{static_prefix}/react.production.min.js"></script>
  <script src="{static_prefix}/react-dom.production.min.js"></script>
  <script src="{static_prefix}/graphiql.min.js"></script>
  <script {script}></script>
</body>
</html>
"""


@router.get(
    "/tenants/{tenantId}/graphql/playground",
    name="playground",
    response_class=HTMLResponse,
    summary="GraphiQL playground for the tenant (works offline)",
)
async def playground(request: Request, tenantId: str) -> HTMLResponse:
    # The page holds no data; queries sent from it are authenticated like any other request.
    service = request.app.state.service
    endpoint = request.url_for("graphql_post", tenantId=tenantId).path
    page = playground_html(endpoint, needs_token=service.needs_token)
    return HTMLResponse(
        page,
        headers={
            "Content-Security-Policy": CONTENT_SECURITY_POLICY,
            "Cache-Control": "no-store",
            "X-Content-Type-Options": "nosniff",
        },
    )


def static_files() -> StaticFiles:
    """The vendored assets, mounted at ``/static``."""
    return StaticFiles(directory=STATIC_DIR)
