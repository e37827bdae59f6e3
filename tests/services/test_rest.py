"""CK libraries and runtime files over REST."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import httpx
import pytest
import yaml

from tests.conftest import DEMO_LIBRARY, METER_1

pytestmark = pytest.mark.integration

EXTRA_LIBRARY = """
modelId: Demo.Extra-1.0.0
dependencies:
  - System-[2.0,3.0)
attributes:
  - {id: Capacity, valueType: Double}
types:
  - typeId: Tank
    derivedFromCkTypeId: System/Entity
    attributes:
      - {id: System/Name, name: Name}
      - {id: Demo.Extra/Capacity, name: Capacity}
"""


def _zip_folder(folder: Path) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for file in folder.rglob("*.yaml"):
            archive.write(file, f"Demo.Energy/{file.relative_to(folder).as_posix()}")
    return buffer.getvalue()


def test_import_yaml_library_then_export_it(client: httpx.Client) -> None:
    created = client.post(
        "/tenants/energy/ck/libraries",
        content=EXTRA_LIBRARY,
        headers={"Content-Type": "application/yaml"},
    )
    assert created.status_code == 201, created.text
    assert created.json()["modelId"] == "Demo.Extra-1.0.0"
    assert created.json()["addedTypes"] == ["Demo.Extra/Tank"]
    again = client.post(
        "/tenants/energy/ck/libraries",
        content=EXTRA_LIBRARY,
        headers={"Content-Type": "application/yaml"},
    )
    assert again.status_code == 200
    assert again.json()["unchanged"] is True
    exported = client.get("/tenants/energy/ck/libraries/Demo.Extra-1.0.0")
    assert exported.headers["content-type"].startswith("application/yaml")
    assert yaml.safe_load(exported.text)["modelId"] == "Demo.Extra-1.0.0"
    as_json = client.get(
        "/tenants/energy/ck/libraries/Demo.Extra", headers={"Accept": "application/json"}
    )
    assert as_json.json()["types"][0]["typeId"] == "Tank"
    assert client.get("/tenants/energy/ck/libraries/Demo.Extra-9.0.0").status_code == 404
    names = [lib["modelId"] for lib in client.get("/tenants/energy/ck/libraries").json()]
    assert names == ["Demo.Energy-1.0.0", "Demo.Extra-1.0.0"]


def test_import_zipped_library_folder_and_multipart(client: httpx.Client, tmp_path: Path) -> None:
    # the zipped Demo.Energy folder (already imported there) into a fresh tenant
    service = client.get("/readyz")
    assert service.status_code == 200
    zipped = _zip_folder(DEMO_LIBRARY)
    same = client.post(
        "/tenants/energy/ck/libraries",
        content=zipped,
        headers={"Content-Type": "application/zip"},
    )
    assert same.status_code == 200
    assert same.json() == {**same.json(), "modelId": "Demo.Energy-1.0.0", "unchanged": True}
    multipart = client.post(
        "/tenants/other/ck/libraries",
        files={"file": ("extra.yaml", EXTRA_LIBRARY.encode(), "application/yaml")},
    )
    assert multipart.status_code == 201, multipart.text
    assert multipart.json()["modelId"] == "Demo.Extra-1.0.0"


def test_invalid_library_is_422_with_details_and_changes_nothing(client: httpx.Client) -> None:
    broken = EXTRA_LIBRARY.replace("System/Entity", "Demo.Extra/Missing")
    response = client.post(
        "/tenants/energy/ck/libraries", content=broken, headers={"Content-Type": "text/yaml"}
    )
    assert response.status_code == 422
    body = response.json()
    assert body["code"] == "MODEL_ERROR"
    assert any("Missing" in detail["message"] for detail in body["details"])
    names = [lib["modelId"] for lib in client.get("/tenants/energy/ck/libraries").json()]
    assert "Demo.Extra-1.0.0" not in names
    not_yaml = client.post(
        "/tenants/energy/ck/libraries", content=b"a: [", headers={"Content-Type": "text/yaml"}
    )
    assert not_yaml.status_code == 400
    empty = client.post("/tenants/energy/ck/libraries", content=b"")
    assert empty.status_code == 400


def test_validate_does_not_import(client: httpx.Client) -> None:
    response = client.post(
        "/tenants/energy/ck/validate",
        content=EXTRA_LIBRARY,
        headers={"Content-Type": "application/yaml"},
    )
    assert response.status_code == 200
    assert response.json()["valid"] is True
    names = [lib["modelId"] for lib in client.get("/tenants/energy/ck/libraries").json()]
    assert "Demo.Extra-1.0.0" not in names


def test_runtime_export_then_import_into_another_tenant(client: httpx.Client) -> None:
    exported = client.get("/tenants/energy/runtime/export")
    assert exported.status_code == 200
    assert exported.headers["x-workbench-entity-count"] == "4"
    document = yaml.safe_load(exported.text)
    assert {e["rtId"] for e in document["entities"]} >= {METER_1}
    as_json = client.get("/tenants/energy/runtime/export", params={"format": "json"})
    assert json.loads(as_json.text)["entities"] == document["entities"]
    imported = client.post(
        "/tenants/other/runtime/import",
        content=exported.content,
        headers={"Content-Type": "application/yaml"},
    )
    assert imported.status_code == 200, imported.text
    assert imported.json() == {"created": 4, "updated": 0}
    meters = client.get(
        "/tenants/other/runtime/export", params={"ckTypeId": "Demo.Energy/EnergyMeter"}
    )
    assert meters.headers["x-workbench-entity-count"] == "3"
    again = client.post(
        "/tenants/other/runtime/import",
        files={"file": ("sample.json", as_json.content, "application/json")},
    )
    assert again.json() == {"created": 0, "updated": 4}


def test_runtime_import_is_all_or_nothing(client: httpx.Client) -> None:
    document = {
        "entities": [
            {"ckTypeId": "Demo.Energy/Site", "attributes": [{"id": "System/Name", "value": "S"}]},
            {"ckTypeId": "Demo.Energy/NoSuchType", "attributes": []},
        ]
    }
    response = client.post(
        "/tenants/other/runtime/import",
        content=json.dumps(document),
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 400
    assert response.json()["code"] == "VALIDATION_FAILED"
    assert response.json()["details"]
    count = client.post("/tenants/other/entities/count", json={"ckTypeId": "Demo.Energy/Site"})
    assert count.json() == {"count": 1}


def test_entity_endpoints_and_conflicts(client: httpx.Client) -> None:
    meter = client.get(f"/tenants/energy/entities/{METER_1}").json()
    assert meter["attributes"]["serialNumber"] == "EM-0001"
    update = {
        "updates": [
            {"rtId": METER_1, "rtVersion": meter["rtVersion"], "attributes": {"voltage": 229.0}}
        ]
    }
    changed = client.post("/tenants/energy/entities/apply", json=update)
    assert changed.status_code == 200
    assert changed.json()[0]["rtVersion"] == meter["rtVersion"] + 1
    stale = client.post("/tenants/energy/entities/apply", json=update)
    assert stale.status_code == 409
    assert stale.json()["code"] == "CONFLICT"
    page = client.post(
        "/tenants/energy/entities/find",
        json={
            "ckTypeId": "Demo.Energy/Meter",
            "where": ["state EQUALS Active"],
            "includeTotal": True,
        },
    ).json()
    assert [item["rtId"] for item in page["items"]] == [METER_1]
    assert page["totalCount"] == 1
    parent = client.get(f"/tenants/energy/entities/{METER_1}/navigate/parent").json()
    assert parent[0]["attributes"]["name"] == "Hall A"
