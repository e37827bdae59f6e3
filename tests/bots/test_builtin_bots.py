"""The built-in bots of notebooks/bots/, each promoted and run by the Bot Service like any bot
(runner process, papermill, a fresh tenant kernel reaching the Asset Repository over HTTP with
the bot's own token), checked by what they changed or produced. One platform serves the module;
each job works on a CK type of its own (the BotJobs library), so the tests stay independent."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import nbformat
import pytest

from tests.bots.builtin.conftest import BOT_JOBS_LIBRARY, Receiver
from tests.bots.conftest import TENANT, Mailbox, Platform, client_token, start_platform
from workbench.bots.builtin.anonymisation import create_key, reveal
from workbench.bots.builtin.report import CHROMIUM
from workbench.identity.directory import Directory
from workbench.testing.http import ServiceServer
from workbench.testing.servers import in_ci

BOTS = Path(__file__).resolve().parents[2] / "notebooks" / "bots"
AUTHOR_ROLES = ["Development", "DataModelManagement", "StreamDataWriter"]
T0 = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.fixture(scope="module")
def mailbox() -> Iterator[Mailbox]:
    box = Mailbox()
    box.controller.start()
    try:
        yield box
    finally:
        box.controller.stop()


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory, mailbox: Mailbox) -> Iterator[Platform]:
    home = tmp_path_factory.mktemp("builtin-bots") / "wb"
    for running in start_platform(home, smtp_url=mailbox.url):
        running.workbench.tenant(TENANT).ck.import_library(BOT_JOBS_LIBRARY)
        yield running


def _notebook(name: str) -> dict[str, Any]:
    return dict(nbformat.read(BOTS / f"{name}.ipynb", as_version=4))


def _author(platform: Platform, tenant: str, roles: list[str]) -> str:
    """A token of a new client-credentials author in ``tenant`` (created when missing)."""
    if not any(r.id == tenant for r in platform.workbench.tenants.list()):
        platform.workbench.tenants.create(tenant)
    client_id = f"author-{tenant}-{len(roles)}"
    _, secret = Directory.for_workbench(platform.workbench).create_client(
        tenant,
        client_id,
        grant_types=["client_credentials"],
        scopes=["workbench_api"],
        roles=roles,
    )
    return client_token(platform.identity_url, client_id, str(secret))


def _run(
    platform: Platform,
    bot: str,
    *,
    tenant: str = TENANT,
    token: str | None = None,
    expect: str = "succeeded",
    **parameters: Any,
) -> dict[str, Any]:
    """Promote ``notebooks/bots/<bot>.ipynb`` in ``tenant`` and run it once, waiting.

    The promotion skips the validation run (``no_run``): it would run the job once with its
    default parameters, and these jobs change the tenant (fixups applied, hooks called,
    aggregates written) before the run under test."""
    options = {"no_run": True}
    with platform.http(token) as http:
        promoted = http.post(
            f"/tenants/{tenant}/promotions",
            json={"notebook": _notebook(bot), "kind": "bot", "name": bot, "options": options},
        )
        assert promoted.status_code == 200, promoted.text
        response = http.post(
            f"/tenants/{tenant}/bots/{bot}/runs", json={"wait": True, "parameters": parameters}
        )
    assert response.status_code == 200, response.text
    record: dict[str, Any] = response.json()
    assert record["status"] == expect, record["error"]
    return record


def _entities(tenant: Any, ck_type_id: str) -> dict[str, Any]:
    return {e.rt_id: e for e in tenant.entities.find(ck_type_id, first=None).items}


def _links(tenant: Any, rt_id: str) -> set[tuple[str, str]]:
    return {(a.role_id, a.target_rt_id) for a in tenant.entities.links([rt_id])}


def test_tenant_dump_and_restore_into_a_new_tenant(platform: Platform, tmp_path: Path) -> None:
    source = platform.workbench.tenant(TENANT)
    meter = next(iter(_entities(source, "Demo.Energy/EnergyMeter")))
    points = [
        {"rtId": meter, "timestamp": T0 + timedelta(hours=i), "voltage": 230.0 + i}
        for i in range(5)
    ]
    source.streams("Demo.Energy/EnergyMeter").write(points)
    dump_dir = tmp_path / "dump"
    dumped = _run(platform, "tenant-dump", dump_dir=str(dump_dir))
    expected = _entities(source, "System/Entity")
    assert dumped["outputs"] == {
        "libraries": ["BotJobs-1.0.0", "Demo.Energy-1.0.0"],
        "entities": len(expected),
        "points": {"Demo.Energy/EnergyMeter": 5},
    }
    assert json.loads((dump_dir / "manifest.json").read_text())["entities"] == len(expected)

    # a new tenant id, with an author of its own (the restore bot runs there)
    token = _author(platform, "energy-copy", AUTHOR_ROLES)
    restore = _run(
        platform, "tenant-restore", tenant="energy-copy", token=token, dump_dir=str(dump_dir)
    )
    assert restore["outputs"]["points"] == {"Demo.Energy/EnergyMeter": 5}
    copy = platform.workbench.tenant("energy-copy")
    restored = _entities(copy, "System/Entity")
    assert sorted(restored) == sorted(expected)
    for rt_id, entity in expected.items():
        assert restored[rt_id].ck_type_id == entity.ck_type_id
        assert restored[rt_id].attributes == entity.attributes
        assert _links(copy, rt_id) == _links(source, rt_id)
    copied = copy.streams("Demo.Energy/EnergyMeter").read().to_pandas()
    assert copied["voltage"].tolist() == [230.0, 231.0, 232.0, 233.0, 234.0]


def test_export_by_filter_then_streams_into_a_new_tenant(
    platform: Platform, tmp_path: Path
) -> None:
    source = platform.workbench.tenant(TENANT)
    line = source.entities.create("BotJobs/Line", {"name": "export line"}).rt_id
    machines = [
        source.entities.create(
            "BotJobs/Machine",
            {"name": f"export {i}", "power": float(i)},
            associations=[("System/Related", line)],
        ).rt_id
        for i in range(3)
    ]
    source.streams("BotJobs/Machine").write(
        [
            {
                "rtId": m,
                "timestamp": T0 + timedelta(minutes=i),
                "power": float(i),
                "temperature": 21.0,
            }
            for m in machines
            for i in range(20)
        ]
    )
    export_dir, streams_dir = tmp_path / "export", tmp_path / "streams"
    exported = _run(
        platform,
        "ck-runtime-export",
        export_dir=str(export_dir),
        libraries=["BotJobs"],
        ck_type_id="BotJobs/Machine",
        where=["name LIKE export%", "power GREATER_THAN 0"],
    )
    assert exported["outputs"]["libraries"] == ["BotJobs-1.0.0"]
    assert exported["outputs"]["rtIds"] == sorted(machines[1:])
    streamed = _run(
        platform,
        "stream-export",
        export_dir=str(streams_dir),
        ck_type_ids=["BotJobs/Machine"],
        from_time=T0.isoformat(),
        to_time=(T0 + timedelta(minutes=10)).isoformat(),
        rt_ids=machines[1:],
    )
    assert streamed["outputs"]["points"] == {"BotJobs/Machine": 20}

    token = _author(platform, "jobs-copy", AUTHOR_ROLES)
    imported = _run(
        platform, "ck-runtime-import", tenant="jobs-copy", token=token, import_dir=str(export_dir)
    )
    assert (imported["outputs"]["libraries"], imported["outputs"]["created"]) == (
        ["BotJobs-1.0.0"],
        2,
    )
    _run(platform, "stream-import", tenant="jobs-copy", token=token, import_dir=str(streams_dir))
    copy = platform.workbench.tenant("jobs-copy")
    restored = _entities(copy, "BotJobs/Machine")
    assert sorted(restored) == sorted(machines[1:])
    for rt_id in machines[1:]:
        assert restored[rt_id].attributes == source.entities.get(rt_id).attributes
    key = ["rtId", "timeStamp"]
    original = source.streams("BotJobs/Machine").read(
        T0, T0 + timedelta(minutes=10), rt_ids=machines[1:]
    )
    copied = copy.streams("BotJobs/Machine").read().to_pandas().sort_values(key)
    assert copied.reset_index(drop=True).equals(
        original.to_pandas().sort_values(key).reset_index(drop=True)
    )


def test_fixups_bot_applies_pending_fixups_and_fails_on_a_broken_one(platform: Platform) -> None:
    tenant = platform.workbench.tenant(TENANT)
    create = tenant.entities.create
    ok = create(
        "System.Bot/Fixup",
        {
            "name": "add a note",
            "order": 1,
            "script": "n = wb.entities.create('BotJobs/Note', {'name': 'by fixup'})\n"
            "print(n.rt_id)",
        },
    ).rt_id
    broken = create("System.Bot/Fixup", {"name": "broken", "order": 2, "script": "1 / 0"}).rt_id
    record = _run(platform, "fixups", expect="failed")
    assert "fixup 'broken' failed" in record["error"]
    assert [(f["name"], f["state"]) for f in record["outputs"]["fixups"]] == [
        ("add a note", "Applied"),
        ("broken", "Failed"),
    ]
    notes = _entities(tenant, "BotJobs/Note")
    assert [n.attributes["name"] for n in notes.values()] == ["by fixup"]
    assert tenant.entities.get(ok).attributes["output"].strip() == next(iter(notes))
    assert "ZeroDivisionError" in tenant.entities.get(broken).attributes["error"]


def test_service_hooks_bot_calls_a_local_receiver(platform: Platform) -> None:
    receiver = Receiver()
    server = ServiceServer(receiver).start()
    try:
        tenant = platform.workbench.tenant(TENANT)
        faulty = tenant.entities.find("Demo.Energy/EnergyMeter", where=["state EQUALS Faulty"])
        hook = tenant.entities.create(
            "System.Bot/ServiceHook",
            {
                "name": "faulty meters",
                "queryCkTypeId": "Demo.Energy/EnergyMeter",
                "fieldFilter": '["state EQUALS Faulty"]',
                "baseUri": server.url,
                "action": "notify",
                "apiKey": "secret-key",
            },
        ).rt_id
        record = _run(platform, "service-hooks")
    finally:
        server.stop()
    assert [c["name"] for c in record["outputs"]["calls"]] == ["faulty meters"]
    [(path, headers, body)] = receiver.calls
    assert (path, headers["x-api-key"]) == ("/notify", "secret-key")
    assert body["rtIds"] == [e.rt_id for e in faulty.items]
    assert tenant.entities.get(hook).attributes["lastStatus"] == "200 OK, 1 entities"


def test_attribute_aggregation_bot(platform: Platform) -> None:
    tenant = platform.workbench.tenant(TENANT)
    line = tenant.entities.create("BotJobs/Line", {"name": "aggregated line"}).rt_id
    for power in (10.0, 32.5):
        tenant.entities.create(
            "BotJobs/Machine",
            {"name": "agg", "power": power},
            associations=[("System/Related", line)],
        )
    tenant.entities.create(
        "System.Bot/AttributeAggregateConfiguration",
        {
            "name": "line power",
            "targetCkTypeId": "BotJobs/Line",
            "fieldFilter": '["name EQUALS aggregated line"]',
            "navigationName": "RelatesFrom",
            "sourceAttribute": "Power",
            "function": "Sum",
            "targetAttribute": "TotalPower",
        },
    )
    record = _run(platform, "attribute-aggregation")
    [outcome] = record["outputs"]["aggregates"]
    assert (outcome["targets"], outcome["changed"]) == (1, 1)
    assert tenant.entities.get(line).attributes["totalPower"] == 42.5


def test_data_cleaning_bot(platform: Platform) -> None:
    tenant = platform.workbench.tenant(TENANT)
    first = tenant.entities.create(
        "BotJobs/Contact", {"name": " Grace  Hopper", "email": "G@x.org"}
    )
    twin = tenant.entities.create("BotJobs/Contact", {"name": "Grace Hopper", "email": "g@x.org "})
    record = _run(
        platform,
        "data-cleaning",
        ck_type_id="BotJobs/Contact",
        lower=["Email"],
        dedupe_by=["Email"],
    )
    assert record["outputs"]["duplicates"] == {first.rt_id: [twin.rt_id]}
    assert tenant.entities.get(first.rt_id).attributes == {
        "name": "Grace Hopper",
        "email": "g@x.org",
    }
    assert list(_entities(tenant, "BotJobs/Contact")) == [first.rt_id]


def test_stream_rollup_bot(platform: Platform) -> None:
    tenant = platform.workbench.tenant(TENANT)
    machine = tenant.entities.create("BotJobs/Machine", {"name": "rolled"}).rt_id
    now = datetime.now(UTC)
    start = (now - timedelta(days=30)).replace(minute=0, second=0, microsecond=0)
    tenant.streams("BotJobs/Machine").write(
        [
            {
                "rtId": machine,
                "timestamp": start + timedelta(minutes=15 * i),
                "temperature": float(i),
            }
            for i in range(8)
        ]
        + [{"rtId": machine, "timestamp": now - timedelta(hours=2), "temperature": 50.0}]
    )
    record = _run(
        platform,
        "stream-rollup",
        ck_type_id="BotJobs/Machine",
        interval="1h",
        rollup_after="7d",
        where=["name EQUALS rolled"],
    )
    assert record["outputs"]["rollup"]["rollup_points"] == 2
    frame = tenant.streams("BotJobs/Machine").read(rt_ids=[machine]).to_pandas()
    assert frame["temperature"].tolist() == [1.5, 5.5, 50.0]


def test_anonymisation_bot(platform: Platform, tmp_path: Path) -> None:
    tenant = platform.workbench.tenant(TENANT)
    key = create_key(tmp_path / "energy.key")
    customer = tenant.entities.create("BotJobs/Customer", {"name": "Ada", "code": "C-1"}).rt_id
    record = _run(
        platform,
        "anonymisation",
        ck_type_id="BotJobs/Customer",
        attributes=["Name"],
        key_file=str(tmp_path / "energy.key"),
    )
    assert record["outputs"]["changed"] == {customer: ["name"]}
    stored = tenant.entities.get(customer).attributes
    assert stored["name"] != "Ada"
    assert reveal(stored["name"], key) == "Ada"
    assert stored["code"] == "C-1"
    assert "Ada" not in json.dumps(record)  # the run history holds no original value


def test_user_management_bot(platform: Platform) -> None:
    directory = Directory.for_workbench(platform.workbench)
    long_ago = (datetime.now(UTC) - timedelta(days=400)).isoformat()
    for name, roles in (("idle", ["StreamDataWriter"]), ("busy", []), ("keeper", [])):
        user = directory.create_user(TENANT, name, password="pw-12345-abcdef", roles=roles)
        user.created = long_ago
        directory.save_user(user)
    busy = directory.get_user(TENANT, "busy")
    assert directory.audit is not None
    directory.audit.record(TENANT, actor=busy.id, action="login.succeeded", target="busy")
    token = _author(platform, TENANT, ["Development", "UserManagement"])
    record = _run(
        platform,
        "user-management",
        token=token,
        identity_url=platform.identity_url,
        inactive_days=90,
        exempt=["keeper"],
        role_members={"StreamDataWriter": ["busy"]},
    )
    assert [u["username"] for u in record["outputs"]["disabled"]] == ["idle"]
    assert record["outputs"]["roles"]["granted"] == {"StreamDataWriter": ["busy"]}
    assert record["outputs"]["roles"]["revoked"] == {"StreamDataWriter": ["idle"]}
    users = {u.username: u for u in directory.list_users(TENANT)}
    assert (users["idle"].enabled, users["busy"].enabled, users["keeper"].enabled) == (
        False,
        True,
        True,
    )
    assert users["busy"].roles == ["StreamDataWriter"]
    assert users["idle"].roles == []


def test_user_management_bot_needs_an_author_with_user_management(platform: Platform) -> None:
    with platform.http() as http:
        response = http.post(
            f"/tenants/{TENANT}/promotions",
            json={"notebook": _notebook("user-management"), "kind": "bot", "name": "um"},
        )
    assert response.status_code == 403
    assert "UserManagement" in response.text


def _needs(program: str, install: str) -> None:
    if shutil.which(program) is None:
        message = f"needs {program} ({install})"
        if in_ci():
            pytest.fail(f"CI=true but {message}", pytrace=False)
        pytest.skip(message)


def test_report_bot_renders_plots_offline_to_html_pdf_and_mail(
    platform: Platform, mailbox: Mailbox, tmp_path: Path
) -> None:
    _needs(CHROMIUM, "apt-get install chromium")
    _needs("pdftoppm", "apt-get install poppler-utils")
    tenant = platform.workbench.tenant(TENANT)
    meters = list(_entities(tenant, "Demo.Energy/EnergyMeter"))
    end = datetime(2026, 2, 1, tzinfo=UTC)
    tenant.streams("Demo.Energy/EnergyMeter").write(
        [
            {
                "rtId": m,
                "timestamp": end - timedelta(minutes=20 * i),
                "voltage": 225.0 + (i % 9) + k,
            }
            for k, m in enumerate(meters)
            for i in range(60)
        ]
    )
    record = _run(
        platform,
        "report",
        ck_type_id="Demo.Energy/EnergyMeter",
        end=end.isoformat(),
        days=1,
        title="Meter voltage",
        report_dir=str(tmp_path / "report"),
        smtp_url=mailbox.url,
        mail_to=["ops@example.org"],
    )
    assert record["outputs"]["report"]["points"] > 0
    assert sorted(record["artifacts"]) == ["report.html", "report.pdf"]
    page = (tmp_path / "report" / "report.html").read_text()
    assert "Meter voltage" in page
    assert "Bokeh" in page
    for external in ('<script src="http', '<link href="http', 'type="text/javascript" src="http'):
        assert external not in page  # BokehJS is inline: nothing loads from a CDN
    png = _first_page_png(tmp_path / "report" / "report.pdf", tmp_path)
    assert _pixels_near(png, (0x30, 0xA2, 0xDA)) > 200  # the first curve, drawn by BokehJS
    [message] = [m for m in mailbox.messages if m["Subject"] == "Meter voltage"]
    names = sorted(str(p.get_filename()) for p in message.walk() if p.get_filename())
    assert names == ["report.html", "report.pdf"]


def _first_page_png(pdf: Path, folder: Path) -> Path:
    subprocess.run(
        ["pdftoppm", "-png", "-r", "72", "-f", "1", "-l", "1", str(pdf), str(folder / "page")],
        check=True,
        timeout=60,
    )
    [png] = folder.glob("page*.png")
    return png


def _pixels_near(png: Path, rgb: tuple[int, int, int], tolerance: int = 40) -> int:
    import numpy as np
    from PIL import Image

    pixels = np.asarray(Image.open(png).convert("RGB"), dtype=int)
    return int((np.abs(pixels - np.array(rgb)) <= tolerance).all(axis=-1).sum())


def test_stale_file_cleanup_bot(platform: Platform, tmp_path: Path) -> None:
    tenant = platform.workbench.tenant(TENANT)
    root = tmp_path / "files"
    root.mkdir()
    old = time.time() - 90 * 86400
    for name in ("kept.pdf", "orphan.bin", "new.bin"):
        (root / name).write_bytes(b"12345")
    for name in ("kept.pdf", "orphan.bin"):
        os.utime(root / name, (old, old))
    tenant.entities.create("BotJobs/Document", {"name": "doc", "file": "kept.pdf"})
    record = _run(platform, "stale-file-cleanup", files_dir=str(root), max_age_days=30)
    assert record["outputs"] == {
        "deleted": ["orphan.bin"],
        "referenced": ["kept.pdf"],
        "bytesFreed": 5,
    }
    assert sorted(p.name for p in root.iterdir()) == ["kept.pdf", "new.bin"]


def test_every_builtin_bot_has_parameters_a_readme_line_and_a_run_here() -> None:
    readme = (BOTS.parent / "README.md").read_text()
    runs = Path(__file__).read_text()
    for path in sorted(BOTS.glob("*.ipynb")):
        notebook = nbformat.read(path, as_version=4)
        tags = [t for c in notebook.cells for t in c.metadata.get("tags", [])]
        assert "parameters" in tags, f"{path.name} has no cell tagged parameters"
        assert not any(c.get("outputs") for c in notebook.cells if c.cell_type == "code")
        assert f"`bots/{path.name}`" in readme, f"{path.name} has no line in notebooks/README.md"
        assert f'"{path.stem}"' in runs, f"{path.name} is not run by this module"
