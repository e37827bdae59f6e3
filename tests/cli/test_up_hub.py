"""``workbench up`` without the hub's proxy: the hub is left out with a way to get it."""

from __future__ import annotations

import pytest


def test_missing_proxy_leaves_the_hub_out_and_says_how_to_get_it(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("jupyterhub")
    from workbench.cli import up
    from workbench.hub import provisioning

    monkeypatch.setattr(provisioning, "proxy_command", lambda: None)
    assert up._available("hub") is False
    said = capsys.readouterr().out
    assert "hub: not started" in said
    assert "make hub-proxy" in said
    # the twin: with a proxy the hub is started
    monkeypatch.setattr(provisioning, "proxy_command", lambda: "/usr/bin/configurable-http-proxy")
    assert up._available("hub") is True
