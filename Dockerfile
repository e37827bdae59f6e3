# syntax=docker/dockerfile:1
# The service image: every `workbench serve ...` service and the JupyterHub hub
# (platform/kubernetes, platform/compose). Dependencies exactly as pinned by requirements.lock.
#   docker build -t registry.example.com/mesh-workbench/service:0.1.0 .

# --- build: a virtual environment from the lock file, then the project itself (no deps) ---
FROM python:3.11.14-slim-bookworm AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1 UV_COMPILE_BYTECODE=1 UV_LINK_MODE=copy
RUN python -m pip install "uv==0.13.9" \
 && python -m venv /opt/venv
WORKDIR /src
COPY requirements.lock pyproject.toml ./
RUN uv pip sync --python /opt/venv/bin/python requirements.lock
COPY workbench ./workbench
COPY README.md ./
RUN uv pip install --python /opt/venv/bin/python --no-deps .

# --- run: the environment, the hub configuration and notebooks; no compiler, no root ---
FROM python:3.11.14-slim-bookworm AS run
LABEL org.opencontainers.image.title="Mesh Workbench services"
RUN groupadd --system --gid 10001 workbench \
 && useradd --system --uid 10001 --gid workbench --home-dir /var/lib/workbench --create-home workbench
COPY --from=build /opt/venv /opt/venv
COPY hub_config /opt/workbench/hub_config
COPY notebooks /opt/workbench/notebooks
ENV PATH="/opt/venv/bin:$PATH" \
    PYTHONUNBUFFERED=1 \
    WORKBENCH_HOME=/var/lib/workbench \
    WORKBENCH_SERVICE_HOST=0.0.0.0 \
    WORKBENCH_HUB_NOTEBOOKS=/opt/workbench/notebooks
USER 10001:10001
WORKDIR /var/lib/workbench
EXPOSE 5001 5003 5005 5009 5015 8081
ENTRYPOINT []
CMD ["workbench", "serve", "asset-repository", "--host", "0.0.0.0", "--port", "5001"]
