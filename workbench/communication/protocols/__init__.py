"""Protocol nodes (IIoT plugs and sockets), each tested against a real peer:
MQTT (:mod:`.mqtt`), Modbus TCP (:mod:`.modbus`), OPC UA (:mod:`.opcua`).

Connection settings are configuration entities the pipeline ``Uses``
(:mod:`.connections`). The client libraries (aiomqtt, pymodbus, asyncua: the ``communication``
extra) are imported when a node connects, not when the registry is built.
"""

from __future__ import annotations

from workbench.communication.protocols import modbus, mqtt, opcua

__all__ = ["NODES"]

NODES = [*mqtt.NODES, *modbus.NODES, *opcua.NODES]
