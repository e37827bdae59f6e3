"""The RabbitMQ benchmarks (pipeline-ingest, edge-offline) say what they need when it is
missing, instead of failing somewhere in a driver."""

from __future__ import annotations

import pytest

from workbench.bench.rabbitmq import amqp_url
from workbench.errors import ValidationError


def test_an_amqp_backend_is_used_as_given() -> None:
    assert amqp_url("amqp://u:p@127.0.0.1:5672/") == "amqp://u:p@127.0.0.1:5672/"


def test_a_backend_that_is_not_amqp_is_refused_naming_it_and_the_fix() -> None:
    with pytest.raises(ValidationError, match=r"'crate://x'.*amqp://USER:PASS@HOST:PORT/"):
        amqp_url("crate://x")


def test_without_a_url_the_error_names_the_option_and_the_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("WORKBENCH_TEST_AMQP_URL", raising=False)
    monkeypatch.setenv("WORKBENCH_BUS_URL", "sqlite:///tmp/bus")  # not RabbitMQ: not taken
    with pytest.raises(ValidationError, match=r"--backend amqp://.*WORKBENCH_TEST_AMQP_URL"):
        amqp_url(None)
