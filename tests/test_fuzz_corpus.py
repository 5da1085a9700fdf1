"""Every input the fuzzer kept (``tests/fuzz_corpus/``, see ``tests/fuzz.py``) replayed through
its target: no atheris needed, and a bug it once found cannot come back unnoticed."""

from __future__ import annotations

from pathlib import Path

import pytest
from fuzz_targets import TARGETS

CORPUS = Path(__file__).parent / "fuzz_corpus"
INPUTS = sorted(path for name in TARGETS for path in (CORPUS / name).glob("*") if path.is_file())


def test_every_target_has_a_corpus() -> None:
    for name in TARGETS:
        assert len(list((CORPUS / name).glob("*"))) >= 10, name


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_the_corpus_replays_without_failure(name: str) -> None:
    target = TARGETS[name]
    inputs = [path for path in INPUTS if path.parent.name == name]
    for path in inputs:
        try:
            target(path.read_bytes())
        except Exception as exc:  # name the input that failed
            raise AssertionError(f"{path.relative_to(CORPUS.parent)} fails: {exc!r}") from exc
