#!/usr/bin/env python3
"""Fuzz one target under atheris for a fixed time: ``python tests/fuzz.py TARGET SECONDS``.

``make fuzz`` runs every target of ``fuzz_targets.TARGETS`` this way, against the pure-Python
core (atheris instruments Python code, not the compiled core). The run starts from the target's
corpus in ``tests/fuzz_corpus/TARGET/`` and adds the inputs that reach new code; the corpus is
then merged down to the inputs that each add coverage (libFuzzer's ``-merge=1``), so that what
the suite replays stays small. An input that fails is written there as ``crash-*`` and the
run stops with its traceback: the suite then fails on it until the bug is fixed.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

CORPUS = Path(__file__).parent / "fuzz_corpus"
MAX_INPUT_BYTES = 1024
TARGET_VARIABLE = "UDPTCP_FUZZ_TARGET"
"""libFuzzer's merge re-runs this file with libFuzzer's arguments only (hence the shebang, the
executable bit, and the venv's python first on PATH): the target's name travels in this
environment variable."""


def run_atheris(name: str, libfuzzer_args: list[str]) -> None:
    """In this process: instrument udptcp and the targets, then hand over to libFuzzer."""
    import atheris  # the fuzz extra; only this mode needs it
    import fuzz_targets

    atheris.instrument_all()  # every Python function loaded by now: udptcp's, the targets'
    atheris.Setup([__file__, f"-max_len={MAX_INPUT_BYTES}", *libfuzzer_args],
                  fuzz_targets.TARGETS[name])
    atheris.Fuzz()


def main() -> int:
    if sys.argv[1].startswith("-"):  # libFuzzer's own arguments: an atheris process
        run_atheris(os.environ[TARGET_VARIABLE], sys.argv[1:])
        return 0
    name, seconds = sys.argv[1], int(sys.argv[2])
    corpus = CORPUS / name
    corpus.mkdir(parents=True, exist_ok=True)
    os.environ[TARGET_VARIABLE] = name
    os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    me = [sys.executable, __file__]
    fuzzed = subprocess.run([*me, f"-max_total_time={seconds}", f"-artifact_prefix={corpus}/",
                             "-print_final_stats=1", str(corpus)], check=False)
    if fuzzed.returncode != 0:
        print(f"fuzz target {name!r} failed: the input is in {corpus}/crash-*", file=sys.stderr)
        return fuzzed.returncode
    with tempfile.TemporaryDirectory() as merged:
        subprocess.run([*me, "-merge=1", merged, str(corpus)], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        kept = list(Path(merged).iterdir())
        if not kept:
            raise RuntimeError(f"merging the corpus of {name!r} kept nothing: left as it is")
        for path in corpus.iterdir():
            path.unlink()
        for path in kept:
            shutil.move(str(path), corpus / path.name)
    print(f"fuzz target {name!r}: {len(kept)} inputs kept in {corpus}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
