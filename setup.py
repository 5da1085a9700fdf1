"""Build udptcp: the protocol core and the codec compiled with mypyc where a C compiler is present.

The core (``udptcp/core``) and ``udptcp/wire.py`` are strict-typed Python; mypyc compiles them
to C extension modules of the same names, as mypy, black and charset-normalizer ship theirs.
The ``.py`` files stay beside them and are the fallback: with no C compiler, or with
``UDPTCP_COMPILE=0`` at build time, nothing is compiled and the package is pure Python; with
``UDPTCP_PURE_PYTHON=1`` at run time the compiled modules are ignored (``udptcp/corebuild.py``).
Everything else (``pyproject.toml``) is static metadata.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

from setuptools import setup

NOT_COMPILED = {"udptcp/core/__init__.py", "udptcp/core/errors.py", "udptcp/core/congestion/__init__.py"}
"""Package initialisers, and ``errors.py``: an exception class deriving from a builtin cannot be
a native class."""


def compiled_sources() -> list[str]:
    """The modules mypyc compiles: every core module but ``NOT_COMPILED``, and the codec."""
    core = sorted(str(p) for p in Path("udptcp/core").rglob("*.py"))
    return [p for p in core if p not in NOT_COMPILED] + ["udptcp/wire.py"]


def extensions() -> list[object]:
    if os.environ.get("UDPTCP_COMPILE", "1") == "0":
        return []
    if not shutil.which(os.environ.get("CC", "cc")) and not shutil.which("gcc"):
        print("udptcp: no C compiler found; installing the pure-Python core", file=sys.stderr)
        return []
    try:
        from mypyc.build import mypycify  # noqa: PLC0415 - only a compiling build needs it
    except ImportError:
        print("udptcp: mypyc is not available; installing the pure-Python core", file=sys.stderr)
        return []
    modules = mypycify(compiled_sources(), opt_level="3", group_name="udptcp.core.native")
    for module in modules:
        module.optional = True  # a failed compile leaves the pure-Python modules in place
    return list(modules)


setup(ext_modules=extensions())
