"""The executor contract on the local process pool, with pre-started kernels."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from workbench.bots.executor import Executor, LocalPoolExecutor
from workbench.bots.kernel_pool import KernelPool
from workbench.bots.runs import BotRunner
from workbench.testing.bot_executor_contract import BotExecutorContract


@pytest.fixture(scope="module")
def executor_factory() -> Callable[[BotRunner], Executor]:
    def make(runner: BotRunner) -> Executor:
        runner.pool = KernelPool(runner.home, size=1)
        return LocalPoolExecutor(runner, workers=2)

    return make


class TestLocalPoolExecutor(BotExecutorContract):
    pass
