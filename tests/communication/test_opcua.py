"""FromOpcUa@1, ReadOpcUaNodes@1 and WriteOpcUaNodes@1 against asyncua's OPC UA server started
here on a free loopback port (no security; Basic256Sha256 SignAndEncrypt with certificates)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.communication.conftest import redeploy_closes_the_old_connection
from workbench.communication import build_pipeline
from workbench.communication.node import ExecutionEnvironment
from workbench.communication.protocols.connections import CREDENTIALS_ENV
from workbench.testing.http import free_port
from workbench.testing.servers import in_ci

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def _asyncua() -> Any:
    try:
        import asyncua
    except ImportError:
        message = "needs asyncua (the communication extra) for its OPC UA server"
        if in_ci():
            pytest.fail(f"CI=true but {message}", pytrace=False)
        pytest.skip(message)
    return asyncua


class Plant:
    def __init__(self, url: str, server: Any, variables: dict[str, Any]) -> None:
        self.url = url
        self.server = server
        self.variables = variables

    def configuration(self, **extra: Any) -> dict[str, Any]:
        return {
            "rtId": "65f00000000000000000d001",
            "ckTypeId": "System.Communication/OpcUaServer",
            "rtWellKnownName": "plantOpc",
            "name": "plant OPC UA",
            "endpointUrl": self.url,
            **extra,
        }


async def _plant(security: list[Any] | None = None, certs: dict[str, Path] | None = None) -> Any:
    asyncua = _asyncua()
    from asyncua import ua

    node_id: Any = ua.NodeId  # asyncua's stubs want its own String type

    port = free_port()
    url = f"opc.tcp://127.0.0.1:{port}/wb/"
    server = asyncua.Server()
    await server.init()
    server.set_endpoint(url)
    if security:
        server.set_security_policy(security)
        assert certs is not None
        await server.load_certificate(str(certs["serverCert"]))
        await server.load_private_key(str(certs["serverKey"]))
    ns = await server.register_namespace("urn:workbench:test")
    line = await server.nodes.objects.add_object(node_id("Line1", ns), "Line1")
    variables = {
        "temperature": await line.add_variable(node_id("Line1.Temperature", ns), "T", 20.0),
        "count": await line.add_variable(
            node_id("Line1.Count", ns), "Count", ua.Variant(7, ua.VariantType.Int32)
        ),
        "state": await line.add_variable(node_id("Line1.State", ns), "State", "idle"),
    }
    for variable in variables.values():
        await variable.set_writable()
    await server.start()
    return Plant(url, server, variables)


@pytest.fixture
async def plant() -> AsyncIterator[Plant]:
    p = await _plant()
    try:
        yield p
    finally:
        await p.server.stop()


READ = """
triggers: [{type: FromPolling@1, interval: "00:00:01"}]
transformations:
  - type: ReadOpcUaNodes@1
    server: plantOpc
    nodes:
      - {nodeId: "ns=2;s=Line1.Temperature", targetPath: $.t}
      - {nodeId: "ns=2;s=Line1.Count", targetPath: $.count}
      - {nodeId: "ns=2;s=Line1.State", targetPath: $.state}
"""

WRITE = """
triggers: [{type: FromExecutePipelineCommand@1}]
transformations:
  - type: WriteOpcUaNodes@1
    server: plant OPC UA
    nodes:
      - {nodeId: "ns=2;s=Line1.Temperature", valuePath: $.t}
      - {nodeId: "ns=2;s=Line1.Count", valuePath: $.n}
      - {nodeId: "ns=2;s=Line1.State", value: running}
"""


async def test_read_and_write_nodes(plant: Plant) -> None:
    env = ExecutionEnvironment(configurations=[plant.configuration()])
    result = await build_pipeline(READ).execute({}, env)
    assert result.status == "Completed", result.error
    assert result.output == {"t": 20.0, "count": 7, "state": "idle"}
    written = await build_pipeline(WRITE).execute({"t": 25, "n": 12.0}, env)
    assert written.status == "Completed", written.error
    assert await plant.variables["temperature"].read_value() == 25.0
    assert await plant.variables["count"].read_value() == 12  # typed as the node's Int32
    assert await plant.variables["state"].read_value() == "running"
    missing = await build_pipeline(READ.replace("Line1.State", "Line1.Nope")).execute({}, env)
    assert missing.status == "Failed"
    assert "Line1.Nope" in (missing.error or "")


SUBSCRIBE = """
triggers:
  - type: FromOpcUa@1
    server: plantOpc
    publishingInterval: 50
    subscriptions:
      - {nodeId: "ns=2;s=Line1.Temperature", samplingInterval: 20, deadband: 1.0}
      - {nodeId: "ns=2;s=Line1.State", samplingInterval: 20}
transformations: []
"""


class Host:
    tenant_id = "t1"

    def __init__(self, configurations: list[dict[str, Any]]) -> None:
        self.configurations = configurations


async def test_subscription_with_deadband(plant: Plant) -> None:
    received: asyncio.Queue[Any] = asyncio.Queue()

    async def fire(data: Any, trigger_type: str) -> None:
        for change in data["values"]:
            await received.put((change["nodeId"], change["value"]))

    pipeline = build_pipeline(SUBSCRIBE)
    host: Any = Host([plant.configuration()])
    task = asyncio.create_task(pipeline.triggers[0].start(host, fire))
    try:
        initial = {await asyncio.wait_for(received.get(), 10) for _ in range(2)}
        assert initial == {("ns=2;s=Line1.Temperature", 20.0), ("ns=2;s=Line1.State", "idle")}
        temperature = plant.variables["temperature"]
        for value in (20.4, 20.8, 22.0, 22.5, 24.0):  # deadband 1.0: only 22.0 and 24.0 pass
            await temperature.write_value(value)
            await asyncio.sleep(0.15)
        await plant.variables["state"].write_value("running")
        got = []
        while True:
            item = await asyncio.wait_for(received.get(), 5)
            got.append(item)
            if item[0].endswith("State"):
                break
    finally:
        task.cancel()
    assert got == [
        ("ns=2;s=Line1.Temperature", 22.0),
        ("ns=2;s=Line1.Temperature", 24.0),
        ("ns=2;s=Line1.State", "running"),
    ]


async def test_basic256sha256_with_certificates(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _asyncua()
    from asyncua import ua
    from asyncua.crypto.cert_gen import setup_self_signed_certificate
    from cryptography.x509.oid import ExtendedKeyUsageOID

    # certificates in DER (.der), keys in PEM, as asyncua writes them
    names = {
        "serverCert": "s.der",
        "serverKey": "s.pem",
        "clientCert": "c.der",
        "clientKey": "c.pem",
    }
    certs = {k: tmp_path / v for k, v in names.items()}
    await setup_self_signed_certificate(
        certs["serverKey"], certs["serverCert"], "urn:workbench:test:server", "127.0.0.1",
        [ExtendedKeyUsageOID.SERVER_AUTH], {"commonName": "test server"},
    )  # fmt: skip
    await setup_self_signed_certificate(
        certs["clientKey"], certs["clientCert"], "urn:workbench:adapter", "127.0.0.1",
        [ExtendedKeyUsageOID.CLIENT_AUTH], {"commonName": "adapter"},
    )  # fmt: skip
    p = await _plant([ua.SecurityPolicyType.Basic256Sha256_SignAndEncrypt], certs)
    try:
        config = p.configuration(securityPolicy="Basic256Sha256")
        env = ExecutionEnvironment(configurations=[config])
        # without the adapter's certificate: refused before connecting, naming the fix
        refused = await build_pipeline(READ).execute({}, env)
        assert refused.status == "Failed"
        assert "certFile" in (refused.error or "")
        credentials = tmp_path / "credentials.json"
        credentials.write_text(
            json.dumps(
                {
                    "plantOpc": {
                        "certFile": str(certs["clientCert"]),
                        "keyFile": str(certs["clientKey"]),
                        "serverCertFile": str(certs["serverCert"]),
                        "applicationUri": "urn:workbench:adapter",
                    }
                }
            )
        )
        monkeypatch.setenv(CREDENTIALS_ENV, str(credentials))
        result = await build_pipeline(READ).execute(
            {}, ExecutionEnvironment(configurations=[config])
        )
        assert result.status == "Completed", result.error
        assert result.output["state"] == "idle"
        # the server offers no unsecured endpoint
        plain = await build_pipeline(READ).execute(
            {}, ExecutionEnvironment(configurations=[p.configuration()])
        )
        assert plain.status == "Failed"
    finally:
        await p.server.stop()


async def test_a_redeploy_closes_the_old_opcua_connection(plant: Plant) -> None:
    read = """
triggers: [{type: FromExecutePipelineCommand@1}]
transformations:
  - type: ReadOpcUaNodes@1
    server: plantOpc
    nodes: [{nodeId: "ns=2;s=Line1.Temperature", targetPath: $.t}]
"""
    port = int(plant.url.split(":")[2].split("/")[0])

    def configuration(proxied: int) -> dict[str, Any]:
        return plant.configuration(endpointUrl=plant.url.replace(f":{port}/", f":{proxied}/"))

    await redeploy_closes_the_old_connection(port, configuration, read, read.replace("$.t", "$.u"))
