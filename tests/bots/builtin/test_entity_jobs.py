"""Fixups, aggregation, cleaning, anonymisation and stale files on an in-process tenant."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import InvalidToken

from workbench.bots.builtin.aggregation import aggregate_attributes, combine
from workbench.bots.builtin.anonymisation import anonymise_entities, create_key, reveal
from workbench.bots.builtin.cleaning import clean_entities
from workbench.bots.builtin.files import clean_stale_files
from workbench.bots.builtin.fixups import run_fixups
from workbench.errors import ValidationError


def _fixup(tenant: Any, name: str, order: int, script: str) -> str:
    attributes = {"name": name, "order": order, "script": script}
    return str(tenant.entities.create("System.Bot/Fixup", attributes).rt_id)


def test_fixups_run_once_in_order_and_stop_at_a_failure(tenant: Any) -> None:
    second = _fixup(tenant, "second", 2, "wb.entities.create('BotJobs/Note', {'name': 'two'})")
    first = _fixup(tenant, "first", 1, "print('hello from the first')")
    broken = _fixup(tenant, "broken", 3, "raise ValueError('bad data')")
    later = _fixup(tenant, "later", 4, "wb.entities.create('BotJobs/Note', {'name': 'four'})")
    outcomes = run_fixups(tenant)
    assert [(o.name, o.state) for o in outcomes] == [
        ("first", "Applied"),
        ("second", "Applied"),
        ("broken", "Failed"),
    ]
    assert tenant.entities.get(first).attributes["output"] == "hello from the first\n"
    failed = tenant.entities.get(broken).attributes
    assert failed["state"] == "Failed"
    assert "ValueError: bad data" in failed["error"]
    assert "state" not in tenant.entities.get(later).attributes  # still pending
    assert tenant.entities.get(second).attributes["appliedAt"]
    # a second run: applied ones never again, the failed one only when asked
    assert run_fixups(tenant) == []
    tenant.entities.update(broken, {"script": "print('fixed')"})
    assert [o.name for o in run_fixups(tenant, retry_failed=True)] == ["broken", "later"]
    notes = sorted(e.attributes["name"] for e in tenant.entities.find("BotJobs/Note").items)
    assert notes == ["four", "two"]


def test_attribute_aggregation_writes_the_combined_values(tenant: Any) -> None:
    line = tenant.entities.create("BotJobs/Line", {"name": "L1"}).rt_id
    empty = tenant.entities.create("BotJobs/Line", {"name": "L2"}).rt_id
    for power in (1.5, 2.5, None):
        attributes = {"name": "m"} if power is None else {"name": "m", "power": power}
        tenant.entities.create(
            "BotJobs/Machine", attributes, associations=[("System/Related", line)]
        )
    for function, target in (("Sum", "TotalPower"), ("Count", "MachineCount")):
        tenant.entities.create(
            "System.Bot/AttributeAggregateConfiguration",
            {
                "name": f"{function} of machines",
                "targetCkTypeId": "BotJobs/Line",
                "navigationName": "RelatesFrom",
                "sourceAttribute": "Power",
                "function": function,
                "targetAttribute": target,
            },
        )
    outcomes = {o.name: o for o in aggregate_attributes(tenant)}
    assert outcomes["Sum of machines"].changed == 1  # the empty line keeps no value
    assert tenant.entities.get(line).attributes["totalPower"] == 4.0
    assert tenant.entities.get(line).attributes["machineCount"] == 3
    assert tenant.entities.get(empty).attributes["machineCount"] == 0
    assert "totalPower" not in tenant.entities.get(empty).attributes
    assert all(o.changed == 0 for o in aggregate_attributes(tenant))  # nothing new to write


def test_combine_names_an_unknown_function() -> None:
    assert combine("avg", [1, 2, None]) == 1.5
    with pytest.raises(ValidationError, match="'median': use Sum, Avg"):
        combine("median", [1])


def test_cleaning_trims_lowers_fills_and_removes_duplicates(tenant: Any) -> None:
    create = tenant.entities.create
    oldest = create("BotJobs/Contact", {"name": "  Ada   Lovelace ", "email": "ADA@x.org "}).rt_id
    twin = create("BotJobs/Contact", {"name": "Ada Lovelace", "email": "ada@x.org"}).rt_id
    other = create("BotJobs/Contact", {"name": "Alan", "tags": [" a ", "b"]}).rt_id
    preview = clean_entities(
        tenant,
        "BotJobs/Contact",
        lower=["Email"],
        defaults={"code": "n/a"},
        dry_run=True,
        dedupe_by=["Email"],
    )
    assert preview.duplicates == {oldest: [twin]}
    assert tenant.entities.get(oldest).attributes["name"] == "  Ada   Lovelace "  # dry run
    report = clean_entities(
        tenant, "BotJobs/Contact", lower=["Email"], defaults={"code": "n/a"}, dedupe_by=["Email"]
    )
    assert report.changed[oldest] == {"name": "Ada Lovelace", "email": "ada@x.org", "code": "n/a"}
    assert tenant.entities.get(oldest).attributes == {
        "name": "Ada Lovelace",
        "email": "ada@x.org",
        "code": "n/a",
    }
    assert tenant.entities.get(other).attributes["tags"] == ["a", "b"]
    remaining = {e.rt_id for e in tenant.entities.find("BotJobs/Contact").items}
    assert remaining == {oldest, other}  # the twin is archived
    assert tenant.entities.get(twin, include_archived=True).archived


def test_anonymisation_is_reversible_only_with_the_key(tenant: Any, tmp_path: Path) -> None:
    key = create_key(tmp_path / "tenant.key")
    assert oct((tmp_path / "tenant.key").stat().st_mode & 0o777) == "0o600"
    ada = tenant.entities.create("BotJobs/Customer", {"name": "Ada", "email": "ada@x.org"}).rt_id
    bob = tenant.entities.create("BotJobs/Customer", {"name": "Bob", "email": "ada@x.org"}).rt_id
    anonymise_entities(tenant, "BotJobs/Customer", ["Name"], key=key)
    hidden = tenant.entities.get(ada).attributes["name"]
    assert hidden.startswith("anon:")
    assert "Ada" not in hidden
    assert reveal(hidden, key) == "Ada"
    with pytest.raises(InvalidToken):
        reveal(hidden, create_key(tmp_path / "other.key"))
    again = anonymise_entities(tenant, "BotJobs/Customer", ["Name"], key=key)
    assert again.changed == {}  # already anonymised values stay as they are
    anonymise_entities(tenant, "BotJobs/Customer", ["Email"], key=key, mode="hash")
    digests = {tenant.entities.get(r).attributes["email"] for r in (ada, bob)}
    assert len(digests) == 1
    assert next(iter(digests)).startswith("anon#")
    anonymise_entities(tenant, "BotJobs/Customer", ["Name"], key=key, mode="reveal")
    assert tenant.entities.get(ada).attributes["name"] == "Ada"


def test_stale_files_keep_referenced_and_recent_ones(tenant: Any, tmp_path: Path) -> None:
    root = tmp_path / "files"
    (root / "old" / "gone").mkdir(parents=True)
    old = time.time() - 40 * 86400
    for relative in ("old/kept.pdf", "old/gone/a.bin", "recent.bin"):
        (root / relative).write_bytes(b"x" * 10)
    for relative in ("old/kept.pdf", "old/gone/a.bin"):
        os.utime(root / relative, (old, old))
    tenant.entities.create("BotJobs/Document", {"name": "manual", "file": "old/kept.pdf"})
    report = clean_stale_files(tenant, root, max_age_days=30)
    assert report.deleted == ["old/gone/a.bin"]
    assert report.referenced == ["old/kept.pdf"]
    assert report.bytes_freed == 10
    assert sorted(p.relative_to(root).as_posix() for p in root.rglob("*")) == [
        "old",
        "old/kept.pdf",
        "recent.bin",
    ]
