"""Run ``async def`` tests without a plugin: each on a fresh loop.

Tests marked ``virtual_time`` run on :class:`framecast.clock.VirtualTimeLoop`, where
timers fire as soon as every task is blocked (no real sleeping).
"""

from __future__ import annotations

import asyncio
import inspect
from typing import Any

import pytest

from framecast.clock import VirtualTimeLoop


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> bool | None:
    if not inspect.iscoroutinefunction(pyfuncitem.obj):
        return None
    virtual = pyfuncitem.get_closest_marker("virtual_time") is not None
    factory: Any = VirtualTimeLoop if virtual else asyncio.new_event_loop
    kwargs = {name: pyfuncitem.funcargs[name] for name in pyfuncitem._fixtureinfo.argnames}
    with asyncio.Runner(loop_factory=factory) as runner:
        runner.run(pyfuncitem.obj(**kwargs))
    return True
