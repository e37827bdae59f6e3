"""Built-in bots of notebooks/bots/, run by the Bot Service like any promoted bot: tenant dump,
then restore into a new tenant id, compared entity by entity."""

from __future__ import annotations

import json
from pathlib import Path

import nbformat

from tests.bots.conftest import TENANT, Platform, client_token, promote
from workbench.identity.directory import Directory

BOTS = Path(__file__).resolve().parents[2] / "notebooks" / "bots"


def _notebook(name: str) -> dict[str, object]:
    return dict(nbformat.read(BOTS / f"{name}.ipynb", as_version=4))


def _run(
    platform: Platform, tenant: str, bot: str, token: str | None = None, **parameters: object
) -> dict[str, object]:
    with platform.http(token) as http:
        response = http.post(
            f"/tenants/{tenant}/bots/{bot}/runs", json={"wait": True, "parameters": parameters}
        )
    assert response.status_code == 200, response.text
    record: dict[str, object] = response.json()
    assert record["status"] == "succeeded", record["error"]
    return record


def test_tenant_dump_and_restore_into_a_new_tenant(platform: Platform, tmp_path: Path) -> None:
    dump_dir = tmp_path / "dump"
    promote(platform, "tenant-dump", _notebook("tenant-dump"), timeout=600)
    dumped = _run(platform, TENANT, "tenant-dump", dump_dir=str(dump_dir))
    source = platform.workbench.tenant(TENANT)
    expected = {e.rt_id: e for e in source.entities.find("System/Entity", first=None).items}
    assert dumped["outputs"] == {"libraries": ["Demo.Energy-1.0.0"], "entities": len(expected)}
    manifest = json.loads((dump_dir / "manifest.json").read_text())
    assert manifest["entities"] == len(expected)

    # a new tenant id, with an author of its own (the restore bot runs there)
    platform.workbench.tenants.create("energy-copy")
    _, secret = Directory.for_workbench(platform.workbench).create_client(
        "energy-copy",
        "copy-author",
        grant_types=["client_credentials"],
        scopes=["workbench_api"],
        roles=["Development", "DataModelManagement", "StreamDataWriter"],
    )
    token = client_token(platform.identity_url, "copy-author", str(secret))
    with platform.http(token) as http:
        response = http.post(
            "/tenants/energy-copy/promotions",
            json={
                "notebook": _notebook("tenant-restore"),
                "kind": "bot",
                "name": "tenant-restore",
                "options": {"timeout": 600},
            },
        )
    assert response.status_code == 200, response.text
    _run(platform, "energy-copy", "tenant-restore", token, dump_dir=str(dump_dir))
    copy = platform.workbench.tenant("energy-copy")
    restored = {e.rt_id: e for e in copy.entities.find("System/Entity", first=None).items}
    assert sorted(restored) == sorted(expected)
    for rt_id, entity in expected.items():
        assert restored[rt_id].ck_type_id == entity.ck_type_id
        assert restored[rt_id].attributes == entity.attributes
        assert _links(copy, rt_id) == _links(source, rt_id)


def _links(tenant: object, rt_id: str) -> set[tuple[str, str]]:
    return {(a.role_id, a.target_rt_id) for a in tenant.entities.links([rt_id])}  # type: ignore[attr-defined]
