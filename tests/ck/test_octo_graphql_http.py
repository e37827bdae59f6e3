"""The product description's query over HTTP, on a tenant holding the OctoMesh-shaped kits:
``runtime { rtIndustryEnergyEnergyMeter { items { rtId ckTypeId name } } }``."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

import workbench
from tests.ck.test_octo_kits import INDUSTRY_BASIC_2_1, KITS, METER, RUNTIME
from workbench.ck import load_library
from workbench.runtime.files import import_runtime_file
from workbench.services import StaticTokenAuthenticator, create_app
from workbench.testing.http import ServiceServer

TOKEN = "octo-kits-token"
QUERY = "{ runtime { rtIndustryEnergyEnergyMeter { items { rtId ckTypeId name } } } }"


@pytest.fixture
def http(wb: workbench.Workbench) -> Iterator[httpx.Client]:
    plant = wb.tenants.create("plant")
    for kit in KITS:
        plant.ck.import_library(load_library(kit))
    import_runtime_file(plant.entities, plant.model, RUNTIME)
    app = create_app(workbench=wb, auth=StaticTokenAuthenticator.from_tokens({TOKEN: None}))
    with (
        ServiceServer(app) as server,
        httpx.Client(
            base_url=server.url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30
        ) as client,
    ):
        yield client


def run(http: httpx.Client, query: str) -> dict[str, object]:
    response = http.post("/tenants/plant/graphql", json={"query": query})
    assert response.status_code == 200, response.text
    body = response.json()
    assert "errors" not in body, body
    data: dict[str, object] = body["data"]
    return data


def test_energy_meter_query_over_http(http: httpx.Client) -> None:
    data = run(http, QUERY)
    assert data == {
        "runtime": {
            "rtIndustryEnergyEnergyMeter": {
                "items": [
                    {
                        "rtId": METER,
                        "ckTypeId": "Industry.Energy/EnergyMeter",
                        "name": "Meter North",
                    },
                    {
                        "rtId": "65b000000000000000000002",
                        "ckTypeId": "Industry.Energy/EnergyMeter",
                        "name": "Meter South",
                    },
                ]
            }
        }
    }


def test_renamed_attributes_after_the_upgrade_over_http(
    http: httpx.Client, wb: workbench.Workbench
) -> None:
    wb.tenant("plant").ck.import_library(load_library(INDUSTRY_BASIC_2_1))
    data = run(http, "{ runtime { rtIndustryBasicAlarm { items { name received priority } } } }")
    assert data == {
        "runtime": {
            "rtIndustryBasicAlarm": {
                "items": [
                    {"name": "Overload", "received": "2026-01-01T08:00:00Z", "priority": "HIGH"}
                ]
            }
        }
    }


def test_an_enum_named_like_a_type_gets_an_enum_suffix(http: httpx.Client) -> None:
    data = run(
        http,
        '{ enum: __type(name: "IndustryEnergyTariffEnum") { kind enumValues { name } } '
        'type: __type(name: "IndustryEnergyTariff") { kind } }',
    )
    assert data == {
        "enum": {"kind": "ENUM", "enumValues": [{"name": "FLAT"}, {"name": "TIME_OF_USE"}]},
        "type": {"kind": "OBJECT"},
    }
