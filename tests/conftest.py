"""Shared test set-up: helper modules importable, and the event loops async tests run on."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable, Mapping
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

BOTH_LOOPS = {
    "test_streams.py", "test_udpsocket.py", "test_reuse_port.py", "test_tunnel_relay.py",
    "test_trace_streams.py", "test_listener.py", "test_protocols.py", "test_reading.py", "test_tls.py",
    "test_integrations.py", "test_memory.py",
}
"""Modules whose async tests run on the stock asyncio loop and on uvloop (where installed)."""

LoopFactories = Mapping[str, Callable[[], asyncio.AbstractEventLoop]]


def _every_loop() -> LoopFactories:
    """The stock loop, plus uvloop where it is installed: pyproject.toml requires it only on
    CPython off Windows, so elsewhere the suite runs on the stock loop alone."""
    try:
        import uvloop
    except ImportError:
        return {"asyncio": asyncio.new_event_loop}
    return {"asyncio": asyncio.new_event_loop, "uvloop": uvloop.new_event_loop}


EVERY_LOOP = _every_loop()


def pytest_asyncio_loop_factories(config: pytest.Config, item: pytest.Item) -> LoopFactories:
    if item.path.name in BOTH_LOOPS:
        return EVERY_LOOP
    return {"asyncio": asyncio.new_event_loop}
