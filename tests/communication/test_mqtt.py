"""FromMqtt@1 and ToMqtt@1 against a real mosquitto broker started here on a free loopback port
with its own configuration (anonymous; with a password file; with TLS and a self-signed CA)."""

from __future__ import annotations

import asyncio
import getpass
import json
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.communication.conftest import redeploy_closes_the_old_connection
from workbench.communication import build_pipeline
from workbench.communication.node import ExecutionEnvironment
from workbench.communication.protocols.connections import CREDENTIALS_ENV
from workbench.testing.http import free_port
from workbench.testing.servers import in_ci

MOSQUITTO = "/usr/sbin/mosquitto"

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def _wait_port(port: int, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"mosquitto exited: {log.read_text()}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"mosquitto did not listen on {port}: {log.read_text()}")


class Broker:
    def __init__(self, port: int, directory: Path) -> None:
        self.port = port
        self.directory = directory
        self.ca_file: Path | None = None

    def configuration(self, **extra: Any) -> dict[str, Any]:
        return {
            "rtId": "65f00000000000000000b001",
            "ckTypeId": "System.Communication/MqttBroker",
            "rtWellKnownName": "plantBroker",
            "name": "plant broker",
            "host": "127.0.0.1",
            "port": self.port,
            **extra,
        }


def _start(directory: Path, lines: list[str]) -> Iterator[Broker]:
    if not Path(MOSQUITTO).exists():
        message = f"needs the mosquitto broker at {MOSQUITTO} (apt-get install mosquitto)"
        if in_ci():
            pytest.fail(f"CI=true but {message}", pytrace=False)
        pytest.skip(message)
    port = free_port()
    config = directory / "mosquitto.conf"
    log = directory / "mosquitto.log"
    config.write_text(
        "\n".join(
            [
                f"listener {port} 127.0.0.1",
                "persistence false",
                f"user {getpass.getuser()}",
                f"log_dest file {log}",
                *lines,
            ]
        )
        + "\n"
    )
    process = subprocess.Popen([MOSQUITTO, "-c", str(config)], stderr=subprocess.STDOUT)
    try:
        _wait_port(port, process, log)
        yield Broker(port, directory)
    finally:
        process.terminate()
        process.wait(10)


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    yield from _start(tmp_path, ["allow_anonymous true"])


@pytest.fixture
def password_broker(tmp_path: Path) -> Iterator[Broker]:
    passwords = tmp_path / "passwords"
    subprocess.run(
        ["/usr/bin/mosquitto_passwd", "-b", "-c", str(passwords), "plc", "s3cret-pw"], check=True
    )
    yield from _start(tmp_path, ["allow_anonymous false", f"password_file {passwords}"])


@pytest.fixture
def tls_broker(tmp_path: Path) -> Iterator[Broker]:
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("needs openssl to make the test certificates")
    ca_key, ca_crt = tmp_path / "ca.key", tmp_path / "ca.crt"
    key, csr, crt = tmp_path / "server.key", tmp_path / "server.csr", tmp_path / "server.crt"
    ext = tmp_path / "ext.cnf"
    ext.write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")

    def run(*args: str) -> None:
        subprocess.run([openssl, *args], check=True, capture_output=True)

    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=test CA",
        "-keyout", str(ca_key), "-out", str(ca_crt))  # fmt: skip
    run("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1", "-keyout", str(key),
        "-out", str(csr))  # fmt: skip
    run("x509", "-req", "-in", str(csr), "-CA", str(ca_crt), "-CAkey", str(ca_key),
        "-CAcreateserial", "-days", "2", "-extfile", str(ext), "-out", str(crt))  # fmt: skip
    gen = _start(
        tmp_path,
        ["allow_anonymous true", f"cafile {ca_crt}", f"certfile {crt}", f"keyfile {key}"],
    )
    for b in gen:
        b.ca_file = ca_crt
        yield b


class Host:
    """A trigger host outside an adapter: the pipeline's configurations, no bus."""

    tenant_id = "t1"

    def __init__(self, configurations: list[dict[str, Any]]) -> None:
        self.configurations = configurations


async def _collect(
    definition: str, configurations: list[dict[str, Any]], count: int
) -> tuple[asyncio.Task[None], asyncio.Queue[Any]]:
    pipeline = build_pipeline(definition)
    queue: asyncio.Queue[Any] = asyncio.Queue()

    async def fire(data: Any, trigger_type: str) -> None:
        result = await pipeline.execute(data, ExecutionEnvironment(configurations=configurations))
        await queue.put(result.output)

    host: Any = Host(configurations)
    task = asyncio.create_task(pipeline.triggers[0].start(host, fire))
    await asyncio.sleep(0.5)  # subscribed
    return task, queue


async def _publish(broker: Broker, messages: list[tuple[str, bytes, int]], **auth: Any) -> None:
    import aiomqtt

    async with aiomqtt.Client("127.0.0.1", broker.port, **auth) as client:
        for topic, payload, qos in messages:
            await client.publish(topic, payload, qos=qos)


SUBSCRIBE = """
triggers:
  - type: FromMqtt@1
    broker: plantBroker
    topics:
      - {topic: plant/+/temperature, qos: 1}
      - {topic: "plant/line2/#", qos: 2}
    payloadFormat: FORM
    targetPath: $.message
transformations:
  - type: SelectByPath@1
    path: $.message.payload
    targetPath: $.value
"""


async def test_from_mqtt_wildcards_qos_json(broker: Broker) -> None:
    configs = [broker.configuration()]
    task, queue = await _collect(SUBSCRIBE.replace("FORM", "Json"), configs, 3)
    try:
        await _publish(
            broker,
            [
                ("plant/line1/temperature", b'{"celsius": 21.5}', 1),
                ("plant/line1/pressure", b'{"bar": 1}', 0),  # matches no filter
                ("plant/line2/a/b", b"[1, 2]", 2),
                ("plant/line3/temperature", b"7", 0),
            ],
        )
        got = [await asyncio.wait_for(queue.get(), 5) for _ in range(3)]
    finally:
        task.cancel()
    by_topic = {g["message"]["topic"]: g for g in got}
    assert set(by_topic) == {
        "plant/line1/temperature",
        "plant/line2/a/b",
        "plant/line3/temperature",
    }
    assert by_topic["plant/line1/temperature"]["value"] == {"celsius": 21.5}
    assert by_topic["plant/line1/temperature"]["message"]["qos"] == 1
    assert by_topic["plant/line2/a/b"]["value"] == [1, 2]
    assert by_topic["plant/line2/a/b"]["message"]["qos"] == 2
    assert by_topic["plant/line3/temperature"]["message"]["qos"] == 0  # min(sent, granted)
    assert queue.empty()


async def test_from_mqtt_text_and_bytes(broker: Broker) -> None:
    configs = [broker.configuration()]
    for form, expected in (("Text", "hello ü"), ("Bytes", "AAH/aGVsbG8gw7w=")):
        task, queue = await _collect(SUBSCRIBE.replace("FORM", form), configs, 1)
        try:
            payload = "hello ü".encode() if form == "Text" else b"\x00\x01\xffhello \xc3\xbc"
            await _publish(broker, [("plant/x/temperature", payload, 0)])
            got = await asyncio.wait_for(queue.get(), 5)
        finally:
            task.cancel()
        assert got["value"] == expected


PUBLISH = """
triggers:
  - type: FromExecutePipelineCommand@1
transformations:
  - type: ToMqtt@1
    broker: plant broker
    path: $.readings
    perItem: true
    topicPath: $.topic
    qos: QOS
"""


@pytest.mark.parametrize("qos", [0, 1, 2])
async def test_to_mqtt_round_trip(broker: Broker, qos: int) -> None:
    import aiomqtt

    configs = [broker.configuration()]
    received: list[Any] = []
    async with aiomqtt.Client("127.0.0.1", broker.port) as sub:
        await sub.subscribe("out/#", qos=2)
        pipeline = build_pipeline(PUBLISH.replace("QOS", str(qos)))
        readings = [{"topic": f"out/meter{i}", "kWh": i * 1.5} for i in range(5)]
        result = await pipeline.execute(
            {"readings": readings}, ExecutionEnvironment(configurations=configs)
        )
        assert result.status == "Completed", result.error
        async with asyncio.timeout(5):
            async for message in sub.messages:
                received.append((message.topic.value, json.loads(message.payload), message.qos))
                if len(received) == 5:
                    break
    assert [r[0] for r in received] == [f"out/meter{i}" for i in range(5)]
    assert received[3][1] == {"topic": "out/meter3", "kWh": 4.5}
    assert {r[2] for r in received} == {qos}


async def test_password_file_credentials_from_adapter(
    password_broker: Broker, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the entity holds the user; the password stays in the adapter's own credentials file
    configs = [password_broker.configuration(username="plc")]
    task, queue = await _collect(SUBSCRIBE.replace("FORM", "Json"), configs, 1)
    await asyncio.sleep(0.5)
    assert task.done() is False  # retrying: not authorised yet
    task.cancel()
    credentials = tmp_path / "credentials.json"
    credentials.write_text(json.dumps({"plantBroker": {"password": "s3cret-pw"}}))
    credentials.chmod(0o600)
    monkeypatch.setenv(CREDENTIALS_ENV, str(credentials))
    task, queue = await _collect(SUBSCRIBE.replace("FORM", "Json"), configs, 1)
    try:
        await _publish(
            password_broker,
            [("plant/a/temperature", b"1", 1)],
            username="plc",
            password="s3cret-pw",
        )
        got = await asyncio.wait_for(queue.get(), 5)
    finally:
        task.cancel()
    assert got["value"] == 1
    # a wrong password: the publishing node fails naming the broker and the fix
    bad = build_pipeline(PUBLISH.replace("QOS", str(1)))
    wrong = [password_broker.configuration(username="plc", password="nope")]
    credentials.write_text("{}")
    result = await bad.execute(
        {"readings": [{"topic": "out/x"}]}, ExecutionEnvironment(configurations=wrong)
    )
    assert result.status == "Failed"
    assert "MQTT broker 'plant broker'" in (result.error or "")


async def test_tls_with_self_signed_ca(
    tls_broker: Broker, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    credentials = tmp_path / "credentials.json"
    credentials.write_text(json.dumps({"plantBroker": {"caFile": str(tls_broker.ca_file)}}))
    monkeypatch.setenv(CREDENTIALS_ENV, str(credentials))
    configs = [tls_broker.configuration(isSslEnabled=True)]
    task, queue = await _collect(SUBSCRIBE.replace("FORM", "Json"), configs, 1)
    try:
        result = await build_pipeline(PUBLISH.replace("QOS", str(1))).execute(
            {"readings": [{"topic": "plant/tls/temperature", "v": 1}]},
            ExecutionEnvironment(configurations=configs),
        )
        assert result.status == "Completed", result.error
        got = await asyncio.wait_for(queue.get(), 5)
    finally:
        task.cancel()
    assert got["value"] == {"topic": "plant/tls/temperature", "v": 1}


def test_schemas_and_validation() -> None:
    from workbench.communication import validate_pipeline

    problems = validate_pipeline(
        "triggers:\n  - type: FromMqtt@1\n    broker: b\n    topics: [{topic: a, qos: 3}]\n"
        "transformations: []\n"
    )
    assert problems
    assert "qos" in str(problems[0])


async def test_adapter_runtime_runs_mqtt_pipeline_with_its_configurations(broker: Broker) -> None:
    """The deploy path: a configuration as the controller pushes it (the pipeline with the
    MqttBroker it Uses); messages on the topic run the pipeline in the adapter, which republishes
    a derived value with ToMqtt@1."""
    import aiomqtt

    from workbench.communication.adapter import AdapterRuntime
    from workbench.messaging.local import LocalMessageBus

    definition = """
triggers:
  - type: FromMqtt@1
    broker: plantBroker
    topics: ["sensors/+/celsius"]
    qos: 1
transformations:
  - type: Math@1
    path: $.payload.value
    operator: Add
    value: 273.15
    targetPath: $.kelvin
  - type: ToMqtt@1
    broker: plantBroker
    path: $.kelvin
    topic: derived/kelvin
    qos: 1
"""
    runtime = AdapterRuntime(
        controller_url="http://127.0.0.1:9",
        tenant_id="t1",
        adapter_rt_id="65f00000000000000000a001",
        tenant=None,
        bus=LocalMessageBus(),
    )
    errors = await runtime.configure(
        {
            "version": 1,
            "pipelines": [
                {
                    "rtId": "65f00000000000000000a002",
                    "name": "mqtt to kelvin",
                    "definition": definition,
                    "configurations": [broker.configuration()],
                }
            ],
        }
    )
    assert errors == []
    try:
        async with aiomqtt.Client("127.0.0.1", broker.port) as client:
            await client.subscribe("derived/#", qos=1)
            await asyncio.sleep(0.5)
            await client.publish("sensors/s1/celsius", b'{"value": 20}', qos=1)
            async with asyncio.timeout(5):
                async for message in client.messages:
                    assert float(message.payload) == pytest.approx(293.15)
                    break
    finally:
        await runtime.undeploy_all()


async def test_a_redeploy_closes_the_old_mqtt_connection(broker: Broker) -> None:
    publish = """
triggers: [{type: FromExecutePipelineCommand@1}]
transformations:
  - type: SetPrimitiveValue@1
    targetPath: $.v
    value: 1
  - type: ToMqtt@1
    broker: plantBroker
    path: $.v
    topic: out/a
"""
    await redeploy_closes_the_old_connection(
        broker.port,
        lambda port: broker.configuration(port=port),
        publish,
        publish.replace("out/a", "out/b"),
    )
