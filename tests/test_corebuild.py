"""The two builds of the core: compiled with mypyc (where built) and pure Python, and the switch.

``make test`` runs the whole suite twice, compiled and with ``UDPTCP_PURE_PYTHON=1``; these
tests check that each run really uses the build it claims, that the switch works in a fresh
process, and that a compiled build older than its sources is never used.
"""

from __future__ import annotations

import importlib.machinery
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from udptcp import corebuild

PACKAGE_DIR = Path(corebuild.__file__).resolve().parent
SHOW_BUILD = "import udptcp.corebuild as b, udptcp; print(b.core_build())"


def _compiled_on_disk() -> bool:
    source = PACKAGE_DIR / "core" / "connection.py"
    return any(
        source.with_name(source.stem + suffix).exists()
        for suffix in importlib.machinery.EXTENSION_SUFFIXES
    )


def _run(code: str, env_extra: dict[str, str], cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != corebuild.PURE_PYTHON_ENV}
    env.update(env_extra)
    return subprocess.run(
        [sys.executable, "-W", "always", "-c", code], env=env, cwd=cwd, capture_output=True,
        text=True, timeout=60, check=True,
    )


needs_compiled = pytest.mark.skipif(
    not _compiled_on_disk() or bool(corebuild.stale_modules()),
    reason="the core is not compiled here (no C compiler, UDPTCP_COMPILE=0), or was edited since "
    "(make build)",
)


def test_this_process_runs_the_build_it_should() -> None:
    pure_asked = os.environ.get(corebuild.PURE_PYTHON_ENV, "") not in ("", "0")
    fresh = _compiled_on_disk() and not corebuild.stale_modules()
    expected = "compiled (mypyc)" if fresh and not pure_asked else "pure Python"
    assert corebuild.core_build() == expected


def test_the_environment_variable_forces_pure_python() -> None:
    assert _run(SHOW_BUILD, {corebuild.PURE_PYTHON_ENV: "1"}).stdout.strip() == "pure Python"


@needs_compiled
def test_the_compiled_build_is_used_by_default() -> None:
    assert _run(SHOW_BUILD, {}).stdout.strip() == "compiled (mypyc)"


@needs_compiled
def test_a_compiled_build_older_than_its_source_is_not_used(tmp_path: Path) -> None:
    copy = tmp_path / "udptcp"
    shutil.copytree(PACKAGE_DIR, copy, ignore=shutil.ignore_patterns("__pycache__"))
    edited = copy / "core" / "rtt.py"
    edited.write_text(edited.read_text() + "\n# edited after the build\n")
    later_s = max(p.stat().st_mtime for p in copy.rglob("*.so")) + 10.0
    os.utime(edited, (later_s, later_s))
    result = _run(SHOW_BUILD, {"PYTHONPATH": str(tmp_path)}, cwd=tmp_path)
    assert result.stdout.strip() == "pure Python"
    assert "older than udptcp/core/rtt.py" in result.stderr and "make build" in result.stderr
