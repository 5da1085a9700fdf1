"""Running a program's main coroutine on the event loop it asks for: uvloop or asyncio's own.

``udptcp.run`` and every command's ``--loop`` decide here, so that they agree on what
``auto`` means and on what to say when uvloop is asked for but cannot be imported.
"""

from __future__ import annotations

import asyncio
import importlib.metadata
from collections.abc import Callable, Coroutine
from typing import Any, Literal, TypeVar, get_args

LoopChoice = Literal["auto", "uvloop", "asyncio"]
"""``auto``: uvloop when it can be imported, else the stock asyncio loop."""
LOOP_CHOICES: tuple[LoopChoice, ...] = get_args(LoopChoice)

T = TypeVar("T")


def run(
    main: Callable[[], Coroutine[Any, Any, T]], loop: LoopChoice = "auto", *, debug: bool | None = None
) -> T:
    """Run the coroutine ``main()`` on a new ``loop`` event loop, as ``asyncio.run`` does.

    ``main`` makes the coroutine only once the loop is chosen: one made before, and then never
    run because uvloop is missing, would be reported as "never awaited". Raises RuntimeError
    for ``loop="uvloop"`` when uvloop cannot be imported.
    """
    result: T = _runner(loop)(main(), debug=debug)
    return result


def _runner(loop: LoopChoice) -> Callable[..., Any]:
    """``asyncio.run`` or ``uvloop.run`` (the same signature), as ``loop`` asks."""
    if loop == "asyncio":
        return asyncio.run
    try:
        import uvloop  # noqa: PLC0415 - optional, and it patches nothing at import
    except ImportError:
        if loop == "uvloop":
            raise RuntimeError("--loop uvloop: uvloop is not installed (pip install uvloop)") from None
        return asyncio.run
    return uvloop.run


def describe_available() -> str:
    """Which loop ``auto`` picks here, with its version: ``uvloop 0.21.0`` or ``asyncio's own loop``."""
    try:
        return f"uvloop {importlib.metadata.version('uvloop')}"
    except importlib.metadata.PackageNotFoundError:
        return "asyncio's own loop (uvloop is not installed)"
