"""Secret attributes of configuration entities: encrypted at rest, masked in every API, set and
replaced through the ordinary writes, revealed only to the adapter configuration push."""

from __future__ import annotations

import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

import workbench
from workbench.errors import SecretKeyError
from workbench.runtime.files import export_runtime_file
from workbench.runtime.secrets import MASK, SECRETS_NAMESPACE, rotate_key
from workbench.services import create_app
from workbench.services.communication_controller.config import adapter_configuration
from workbench.testing.http import ServiceServer

BROKER = "System.Communication/MqttBroker"
PASSWORD = "plaintext-Hunter2-do-not-leak"
CLIENT_SECRET = "client-secret-Zx81-do-not-leak"


@pytest.fixture
def plant(wb: workbench.Workbench) -> Any:
    return wb.tenants.create("plant")


def _broker(tenant: Any, password: str = PASSWORD, name: str = "plantBroker") -> Any:
    return tenant.entities.create(
        BROKER,
        {"name": name, "host": "127.0.0.1", "username": "wb", "password": password},
        rt_well_known_name=name,
    )


def _stored_bytes(home: Path) -> bytes:
    """Every byte of the data directory's databases (main files, WAL and journals)."""
    return b"".join(p.read_bytes() for p in home.rglob("*") if p.is_file() and ".db" in p.name)


def test_secret_is_masked_in_answers_and_encrypted_at_rest(
    wb: workbench.Workbench, plant: Any
) -> None:
    created = _broker(plant)
    assert created["password"] == MASK
    assert plant.entities.get(created.rt_id)["password"] == MASK
    assert [e["password"] for e in plant.entities.find(BROKER)] == [MASK]
    assert plant.entities.get(created.rt_id)["username"] == "wb"  # other attributes as they are
    # the key file is created once, owner-only, in the data directory's secrets folder
    key_file = wb.home / "secrets" / "entity-secrets.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    stored = plant.entity_store.get_meta(SECRETS_NAMESPACE, created.rt_id)
    assert set(stored) == {"Password"}
    assert PASSWORD not in stored["Password"]
    assert PASSWORD.encode() not in _stored_bytes(wb.home)
    # only the reveal (the configuration pushed to the adapter) decrypts
    assert plant.entities.reveal_secrets(created)["password"] == PASSWORD


def test_write_mask_keeps_new_value_replaces_none_removes(plant: Any) -> None:
    broker = _broker(plant)
    plant.entities.update(broker.rt_id, {"host": "broker.local", "password": MASK})
    assert plant.entities.reveal_secrets(plant.entities.get(broker.rt_id))["password"] == PASSWORD
    plant.entities.update(broker.rt_id, {"password": "second"})
    entity = plant.entities.get(broker.rt_id)
    assert entity["password"] == MASK
    assert plant.entities.reveal_secrets(entity)["password"] == "second"
    plant.entities.update(broker.rt_id, {"password": None})
    entity = plant.entities.get(broker.rt_id)
    assert "password" not in entity.attributes
    assert plant.entity_store.get_meta(SECRETS_NAMESPACE, broker.rt_id) is None
    # a mask with nothing stored behind it sets nothing
    fresh = _broker(plant, password=MASK, name="second")
    assert "password" not in plant.entities.get(fresh.rt_id).attributes


def test_erasing_the_entity_erases_its_secret(plant: Any) -> None:
    broker = _broker(plant)
    plant.entities.delete(broker.rt_id, erase=True)
    assert plant.entity_store.get_meta(SECRETS_NAMESPACE, broker.rt_id) is None


def test_export_and_reimport_keep_the_secret_without_showing_it(plant: Any, tmp_path: Path) -> None:
    broker = _broker(plant)
    target = tmp_path / "export.yaml"
    export_runtime_file(plant.entities, plant.model, target, ck_type_id=BROKER)
    text = target.read_text()
    assert PASSWORD not in text
    assert MASK in text
    from workbench.runtime.files import import_runtime_file

    import_runtime_file(plant.entities, plant.model, target)  # "***" back: keep the secret
    assert plant.entities.reveal_secrets(plant.entities.get(broker.rt_id))["password"] == PASSWORD


def test_rest_and_graphql_answers_never_hold_the_secret(wb: workbench.Workbench) -> None:
    plant = wb.tenants.create("plant")
    broker = _broker(plant)
    account = plant.entities.create(
        "System.Communication/ServiceAccount",
        {"name": "svc", "clientId": "c1", "clientSecret": CLIENT_SECRET},
    )
    with (
        ServiceServer(create_app(workbench=wb, no_auth=True)) as server,
        httpx.Client(base_url=server.url, timeout=10) as client,
    ):
        base = "/tenants/plant"
        answers = [
            client.get(f"{base}/entities/{broker.rt_id}"),
            client.get(f"{base}/entities/{account.rt_id}"),
            client.post(f"{base}/entities/find", json={"ckTypeId": BROKER}),
            client.post(
                f"{base}/graphql",
                json={
                    "query": "{ runtime { rtSystemCommunicationMqttBroker { items { rtId "
                    "password } } rtSystemCommunicationServiceAccount { items { "
                    "clientSecret } } } }"
                },
            ),
        ]
        # set a new secret through GraphQL; the answer masks it too
        answers.append(
            client.post(
                f"{base}/graphql",
                json={
                    "query": "mutation($e: [SystemCommunicationMqttBrokerUpdateInput!]!) "
                    "{ runtime { systemCommunicationMqttBrokers { update(entities: $e) { "
                    "rtId password } } } }",
                    "variables": {
                        "e": [{"rtId": broker.rt_id, "item": {"password": "from-graphql"}}]
                    },
                },
            )
        )
    for answer in answers:
        assert answer.status_code == 200, answer.text
        assert PASSWORD not in answer.text
        assert CLIENT_SECRET not in answer.text
        assert "from-graphql" not in answer.text
        assert MASK in answer.text, answer.text
    revealed = plant.entities.reveal_secrets(plant.entities.get(broker.rt_id))
    assert revealed["password"] == "from-graphql"


def test_adapter_configuration_reveals_only_for_the_push(plant: Any) -> None:
    broker = _broker(plant)
    adapter = plant.entities.create("System.Communication/Adapter", {"name": "a"})
    flow = plant.entities.create("System.Communication/DataFlow", {"name": "flow"})
    plant.entities.create(
        "System.Communication/Pipeline",
        {"name": "p", "enabled": True, "pipelineDefinition": "triggers: []\ntransformations: []"},
        associations=[
            ("System/ParentChild", flow.rt_id),
            ("System.Communication/Executes", adapter.rt_id),
            ("System.Communication/Uses", broker.rt_id),
        ],
    )
    shown = adapter_configuration(plant, adapter.rt_id)
    pushed = adapter_configuration(plant, adapter.rt_id, reveal_secrets=True)
    assert shown["pipelines"][0]["configurations"][0]["password"] == MASK
    assert pushed["pipelines"][0]["configurations"][0]["password"] == PASSWORD


def test_a_different_key_is_a_clear_error_naming_the_fix(
    wb: workbench.Workbench, plant: Any
) -> None:
    broker = _broker(plant)
    key_file = wb.home / "secrets" / "entity-secrets.key"
    from cryptography.fernet import Fernet

    key_file.write_text(Fernet.generate_key().decode() + "\n")
    wb.secret_cipher._keys = None  # as a process started with the replaced file sees it
    with pytest.raises(SecretKeyError) as caught:
        plant.entities.reveal_secrets(plant.entities.get(broker.rt_id))
    message = str(caught.value)
    assert "Password" in message
    assert broker.rt_id in message
    assert str(key_file) in message
    assert "Restore" in message
    key_file.unlink()
    wb.secret_cipher._keys = None
    with pytest.raises(SecretKeyError, match="missing"):
        plant.entities.reveal_secrets(plant.entities.get(broker.rt_id))


def test_rotate_key_reencrypts_every_tenant(wb: workbench.Workbench, plant: Any) -> None:
    broker = _broker(plant)
    other = wb.tenants.create("other")
    second = _broker(other, password="other-secret")
    key_file = wb.home / "secrets" / "entity-secrets.key"
    old_key = key_file.read_text()
    before = plant.entity_store.get_meta(SECRETS_NAMESPACE, broker.rt_id)
    stores = [plant.entity_store, other.entity_store]
    assert rotate_key(wb.secret_cipher, stores) == 2
    assert key_file.read_text() != old_key
    assert len(key_file.read_text().split()) == 1
    assert plant.entity_store.get_meta(SECRETS_NAMESPACE, broker.rt_id) != before
    assert plant.entities.reveal_secrets(plant.entities.get(broker.rt_id))["password"] == PASSWORD
    assert other.entities.reveal_secrets(other.entities.get(second.rt_id))["password"] == (
        "other-secret"
    )


LIBRARY = {
    "modelId": "Plant.Config-1.0.0",
    "dependencies": ["System-[2.0,3.0)", "System.Communication-[3.0,4.0)"],
    "attributes": [
        {"id": "Endpoint", "valueType": "String"},
        {"id": "AccessCode", "valueType": "String", "isSecret": True},
        {"id": "Pin", "valueType": "String", "metaData": [{"key": "sensitive", "value": "true"}]},
        {"id": "PublicToken", "valueType": "String", "metaData": [{"key": "secret", "value": "0"}]},
        {"id": "ApiKey", "valueType": "String"},
    ],
    "types": [
        {
            "typeId": "Gateway",
            "derivedFromCkTypeId": "System.Communication/ConfigurationEntity",
            "attributes": [
                {"id": "${this}/Endpoint", "name": "Endpoint", "isOptional": True},
                {"id": "${this}/AccessCode", "name": "AccessCode", "isOptional": True},
                {"id": "${this}/Pin", "name": "Pin", "isOptional": True},
                {"id": "${this}/PublicToken", "name": "PublicToken", "isOptional": True},
                {"id": "${this}/ApiKey", "name": "ApiKey", "isOptional": True},
            ],
        }
    ],
}


@pytest.fixture
def library(tmp_path: Path) -> Iterator[Path]:
    folder = tmp_path / "ConstructionKit"
    folder.mkdir()
    (folder / "ckModel.yaml").write_text(
        yaml.safe_dump({k: LIBRARY[k] for k in ("modelId", "dependencies")})
    )
    (folder / "elements.yaml").write_text(
        yaml.safe_dump({k: LIBRARY[k] for k in ("attributes", "types")})
    )
    return folder


def test_secret_markers_flag_metadata_and_naming_convention(plant: Any, library: Path) -> None:
    plant.ck.import_library(library)
    values = {
        "endpoint": "e",
        "accessCode": "a",
        "pin": "p",
        "publicToken": "t",
        "apiKey": "k",
    }
    entity = plant.entities.create("Plant.Config/Gateway", {"name": "gw", **values})
    assert entity.attributes == {
        "name": "gw",
        "endpoint": "e",  # not secret
        "accessCode": MASK,  # isSecret: true
        "pin": MASK,  # metaData sensitive
        "publicToken": "t",  # metaData secret=0 opts out of the naming convention
        "apiKey": MASK,  # naming convention on a configuration entity
    }
    assert plant.entities.reveal_secrets(entity) == {"name": "gw", **values}


def test_cli_rotate_key_also_encrypts_plaintext_left_from_before(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from workbench.cli import cli
    from workbench.storage.base import WriteBatch

    home = tmp_path / "wb"
    with workbench.open(home) as wb:
        plant = wb.tenants.create("plant")
        broker = _broker(plant)
        legacy = _broker(plant, name="legacy")
        # a value stored in plain text (before the attribute was secret)
        stored = plant.entity_store.get_many([legacy.rt_id])[legacy.rt_id]
        stored.attributes["Password"] = "legacy-plain"
        plant.entity_store.apply(WriteBatch(updates=[(stored, None)]))
    result = CliRunner().invoke(cli, ["secrets", "rotate-key", "--data-dir", str(home), "--json"])
    assert result.exit_code == 0, result.output
    assert '"reencrypted": 2' in result.output
    assert '"sealed": 1' in result.output
    with workbench.open(home) as wb:
        plant = wb.tenant("plant")
        again = plant.entities.get(legacy.rt_id)
        assert again["password"] == MASK
        assert plant.entities.reveal_secrets(again)["password"] == "legacy-plain"
        first = plant.entities.get(broker.rt_id)
        assert plant.entities.reveal_secrets(first)["password"] == PASSWORD


@pytest.mark.integration
def test_mongo_stores_only_ciphertext(wb: workbench.Workbench) -> None:
    import uuid
    from urllib.parse import urlsplit, urlunsplit

    import bson
    import pymongo

    from workbench.testing.servers import require_server_url

    base = urlsplit(
        require_server_url(
            "WORKBENCH_TEST_MONGODB_URL", "MongoDB wire-protocol server (MongoDB or FerretDB)"
        )
    )
    database = f"wbsecrets_{uuid.uuid4().hex[:12]}"
    url = urlunsplit(base._replace(path=f"/{database}"))
    plant = wb.tenants.create("plant-mongo", config={"entities.url": url})
    try:
        broker = _broker(plant)
        assert plant.entities.get(broker.rt_id)["password"] == MASK
        assert plant.entities.reveal_secrets(broker)["password"] == PASSWORD
        client: Any = pymongo.MongoClient(urlunsplit(base._replace(path="/")))
        try:
            raw = b"".join(
                bson.encode(doc)
                for name in client[database].list_collection_names()
                for doc in client[database][name].find()
            )
        finally:
            client.close()
        assert PASSWORD.encode() not in raw
        assert b"Password" in raw  # the documents were read: the attribute's name is there
    finally:
        wb.tenants.delete("plant-mongo", confirm=True)


def test_a_protocol_node_without_uses_gets_a_clear_error_not_the_mask(plant: Any) -> None:
    from workbench.communication.protocols.connections import resolve_connection

    _broker(plant)
    with pytest.raises(workbench.ValidationError, match=r"password .*System.Communication/Uses"):
        resolve_connection("plantBroker", BROKER, [], tenant=plant)
