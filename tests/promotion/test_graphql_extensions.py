"""Kind ``graphql``: typed notebook functions under ``extensions { ... }`` of the tenant schema,
served by a real Asset Repository, run in a worker process; failures stay on their field."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

import workbench
from tests.conftest import DEMO_LIBRARY, DEMO_RUNTIME
from tests.promotion.conftest import write_notebook
from workbench.errors import ValidationError
from workbench.promotion.service import Promotions
from workbench.services import StaticTokenAuthenticator, create_app
from workbench.testing.http import ServiceServer

TOKEN = "extension-test-token"
FUNCTIONS = '''
import os, time

def meter_count() -> int:
    """Energy meters of the tenant."""
    return wb.entities.count("Demo.Energy/EnergyMeter")

def top_meters(n: int = 1) -> list["Demo.Energy/EnergyMeter"]:
    return [m.rt_id for m in wb.entities.find("Demo.Energy/EnergyMeter", first=n).items]

def worker_pid() -> int:
    return os.getpid()

def scaled(values: list[float], factor: float = 2.0) -> list[float]:
    return [v * factor for v in values]

def slow() -> int:
    time.sleep(60)
    return 1

def broken() -> int | None:
    raise ValueError("no readings yet")

def untyped(x):
    return x
'''


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[workbench.Workbench, httpx.Client]]:
    from workbench.runtime.files import import_runtime_file

    with workbench.open(tmp_path / "wb") as wb:
        tenant = wb.tenants.create("energy")
        tenant.ck.import_library(DEMO_LIBRARY)
        import_runtime_file(tenant.entities, tenant.model, DEMO_RUNTIME)
        app = create_app(workbench=wb, auth=StaticTokenAuthenticator(TOKEN))
        with (
            ServiceServer(app) as server,
            httpx.Client(
                base_url=server.url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=120
            ) as http,
        ):
            yield wb, http
        from workbench.graphql.extensions import workers

        workers.close()


def query(http: httpx.Client, text: str) -> dict[str, Any]:
    response = http.post("/tenants/energy/graphql", json={"query": text})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def test_extension_fields_answer_from_a_worker_process(
    served: tuple[workbench.Workbench, httpx.Client], tmp_path: Path
) -> None:
    wb, http = served
    notebook = write_notebook(tmp_path / "meter-api.ipynb", [FUNCTIONS])
    result = Promotions(wb).promote(
        "energy", notebook, kind="graphql", author="ada", options={"timeout": 3}
    )
    names = [f["name"] for f in result.artifact.details["functions"]]
    assert names == ["broken", "meter_count", "scaled", "slow", "top_meters", "worker_pid"]

    body = query(
        http,
        "{ extensions { meter_count worker_pid scaled(values: [1.5, 2]) "
        "top_meters(n: 1) { rtId name } } "
        "runtime { rtDemoEnergyEnergyMeter { totalCount } } }",
    )
    assert "errors" not in body, body
    ext = body["data"]["extensions"]
    assert ext["meter_count"] == 2
    assert ext["scaled"] == [3.0, 4.0]
    assert ext["worker_pid"] != os.getpid()  # never in the API server's process
    assert ext["top_meters"][0]["name"]
    assert body["data"]["runtime"]["rtDemoEnergyEnergyMeter"]["totalCount"] == 2


def test_failing_and_slow_extensions_leave_the_schema_working(
    served: tuple[workbench.Workbench, httpx.Client], tmp_path: Path
) -> None:
    wb, http = served
    notebook = write_notebook(tmp_path / "meter-api.ipynb", [FUNCTIONS])
    Promotions(wb).promote("energy", notebook, kind="graphql", author="ada", options={"timeout": 3})
    began = time.monotonic()
    body = query(http, "{ extensions { slow } runtime { rtDemoEnergyEnergyMeter { totalCount } } }")
    assert time.monotonic() - began < 30
    assert body["data"]["runtime"]["rtDemoEnergyEnergyMeter"]["totalCount"] == 2
    assert body["data"]["extensions"]["slow"] is None
    assert "did not answer within 3 s" in body["errors"][0]["message"]

    body = query(http, "{ extensions { broken meter_count } }")
    assert body["data"]["extensions"] == {"broken": None, "meter_count": 2}
    assert "ValueError: no readings yet" in body["errors"][0]["message"]

    # retired: the field is gone, the rest of the schema is as before
    Promotions(wb).retire("energy", "meter-api", by="ada")
    body = query(http, "{ extensions { meter_count } }")
    assert "extensions" in body["errors"][0]["message"]
    body = query(http, "{ runtime { rtDemoEnergyEnergyMeter { totalCount } } }")
    assert body["data"]["runtime"]["rtDemoEnergyEnergyMeter"]["totalCount"] == 2


def test_a_notebook_without_typed_functions_is_refused(
    served: tuple[workbench.Workbench, httpx.Client], tmp_path: Path
) -> None:
    wb, _ = served
    notebook = write_notebook(tmp_path / "plain.ipynb", ["def f(x):\n    return x"])
    with pytest.raises(ValidationError, match="skipped: f: it has no return annotation"):
        Promotions(wb).promote("energy", notebook, kind="graphql", author="ada")
