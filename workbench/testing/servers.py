"""Finding the real servers that integration tests need.

Locally a test whose server is missing skips, naming the server and the variable to set; under
``CI=true`` it fails instead, because ``.ci/run`` provisions every server and a skip there would
hide a broken provisioning step.
"""

from __future__ import annotations

import os

import pytest

__all__ = ["in_ci", "require_server_url"]


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() == "true"


def require_server_url(env_var: str, server: str) -> str:
    """The URL in ``env_var``; otherwise skip (locally) or fail (under ``CI=true``)."""
    url = os.environ.get(env_var, "").strip()
    if url:
        return url
    message = f"needs a real {server}: set {env_var} (.ci/run provisions one)"
    if in_ci():
        pytest.fail(f"CI=true but {message}", pytrace=False)
    pytest.skip(message)
