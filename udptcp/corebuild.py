"""Which build of the protocol core runs: compiled with mypyc, or the pure-Python modules.

``setup.py`` compiles ``udptcp/core`` and ``udptcp/wire.py`` where a C compiler is present; the
extension modules sit beside their ``.py`` files and Python imports them first. This module,
imported before any of them (by ``udptcp/__init__.py``), makes the ``.py`` files win instead:

- when ``UDPTCP_PURE_PYTHON=1`` is set (to compare, or to debug with Python's tools), and
- when a compiled module is older than its source: a core edited since the last build must
  not be shadowed by the build (a warning says to rebuild: ``make build``).

The two builds are the same code; the whole test suite runs against both (``make test``).
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import importlib.util
import os
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

PURE_PYTHON_ENV = "UDPTCP_PURE_PYTHON"
_PACKAGE_DIR = Path(__file__).resolve().parent
_COMPILED_ROOTS = ("udptcp.core.", "udptcp.wire")


SHARED_LIBRARY_STEM = "native__mypyc"
"""mypyc puts every compiled module's code in one library (``group_name`` in setup.py); the
modules' own extension files are shims that may keep an older date after a rebuild."""


def _shared_library() -> Path | None:
    for suffix in importlib.machinery.EXTENSION_SUFFIXES:
        candidate = _PACKAGE_DIR / "core" / (SHARED_LIBRARY_STEM + suffix)
        if candidate.exists():
            return candidate
    return None


def stale_modules() -> list[str]:
    """Sources edited after the compiled core was built, by path (empty if nothing is built)."""
    library = _shared_library()
    if library is None:
        return []
    built_at = library.stat().st_mtime
    sources = [*(_PACKAGE_DIR / "core").rglob("*.py"), _PACKAGE_DIR / "wire.py"]
    return [
        str(source.relative_to(_PACKAGE_DIR.parent))
        for source in sources
        if source.stat().st_mtime > built_at
    ]


class _SourceFirst(importlib.abc.MetaPathFinder):
    """Finds the core's modules as their ``.py`` files, whatever extension sits beside them."""

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if not fullname.startswith(_COMPILED_ROOTS) or path is None:
            return None
        name = fullname.rpartition(".")[2]
        for entry in path:
            source = os.path.join(entry, name + ".py")
            if os.path.isfile(source):
                return importlib.util.spec_from_file_location(fullname, source)
        return None


def install() -> None:
    """Decide, once per process, whether the compiled modules may be imported."""
    if any(isinstance(finder, _SourceFirst) for finder in sys.meta_path):
        return
    if os.environ.get(PURE_PYTHON_ENV, "") not in ("", "0"):
        sys.meta_path.insert(0, _SourceFirst())
        return
    stale = stale_modules()
    if stale:
        warnings.warn(
            f"udptcp: the compiled core is older than {', '.join(stale[:3])}"
            f"{' and others' if len(stale) > 3 else ''}; running the pure-Python core. "
            "Rebuild it with `make build` (or `pip install -e .`).",
            RuntimeWarning,
            stacklevel=2,
        )
        sys.meta_path.insert(0, _SourceFirst())


def core_build() -> str:
    """``compiled (mypyc)`` or ``pure Python``: what this process runs."""
    connection = importlib.import_module("udptcp.core.connection")  # not at the top: see above
    compiled = not str(connection.__file__).endswith(".py")
    return "compiled (mypyc)" if compiled else "pure Python"
