"""The ``udptcp`` command's contract in-process: its help and its error messages.

End-to-end runs between real processes are in ``test_processes.py``; these need no network.
"""

from __future__ import annotations

import argparse
import re
import socket
import subprocess
import sys

import pytest

from udptcp.cli.bench import MB, progress_line
from udptcp.cli.common import EXIT_ERROR
from udptcp.cli.main import build_parser, main
from udptcp.netem.spec import KEYS, SPEC_HELP

UNRESOLVABLE = "no-such-host.invalid"


def _commands(
    parser: argparse.ArgumentParser | None = None, prefix: str = ""
) -> dict[str, argparse.ArgumentParser]:
    """Every command by name, nested ones too (``tunnel server``)."""
    found: dict[str, argparse.ArgumentParser] = {}
    for action in (parser or build_parser())._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, command in action.choices.items():
                found[prefix + name] = command
                found.update(_commands(command, f"{prefix}{name} "))
    return found


def test_the_tunnel_sides_are_among_the_commands_checked() -> None:
    assert {"tunnel server", "tunnel client"} <= set(_commands())


def test_every_argument_of_every_command_is_described() -> None:
    missing = [
        f"udptcp {name} {action.dest}"
        for name, command in _commands().items() for action in command._actions if not action.help
    ]
    assert missing == []


def _no_default(value: object) -> bool:
    """Nothing to state: unset, a flag off, an empty list (``0 == False``, so not ``in``)."""
    return value is None or value is False or value == [] or value is argparse.SUPPRESS


def test_every_option_with_a_default_states_it() -> None:
    silent = [
        f"udptcp {name} {action.option_strings[0]}: {action.help}"
        for name, command in _commands().items()
        for action in command._actions
        if action.option_strings and action.help is not argparse.SUPPRESS
        and not _no_default(action.default) and "default" not in str(action.help)
    ]
    assert silent == []


def test_every_netem_spec_key_is_described() -> None:
    described = {
        match.group(1)
        for match in re.finditer(r"^  ([a-z-]+)=\S*[ \t]+\S", SPEC_HELP, re.MULTILINE)
    }
    assert set(KEYS) <= described


@pytest.mark.parametrize(
    "argv",
    [
        ["echo-client", UNRESOLVABLE, "9000", "hi"],
        ["connect", UNRESOLVABLE, "9000"],
        ["echo-server", "--host", UNRESOLVABLE],
        ["listen", "--host", UNRESOLVABLE, "0"],
        ["tunnel", "server", "--listen", f"{UNRESOLVABLE}:0", "--to", "127.0.0.1:9"],
        ["tunnel", "client", "--listen", f"{UNRESOLVABLE}:0", "--to", "127.0.0.1:9"],
    ],
)
def test_an_unresolvable_host_is_named_with_what_to_do(
    argv: list[str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The resolver says only "Name or service not known"; the command says which name."""

    def no_such_name(host: object, *args: object, **kwargs: object) -> list[object]:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", no_such_name)  # no DNS needed, same every time
    code = main([*argv, "--loop", "asyncio"])  # uvloop resolves without socket.getaddrinfo
    err = capsys.readouterr().err
    assert code == EXIT_ERROR == 1  # "other error" in the documented exit codes
    assert f"udptcp {argv[0]}: cannot resolve host {UNRESOLVABLE!r}: Name or service not known" in err
    assert "give an IP address" in err


WITHOUT_UVLOOP = (
    "import sys; sys.modules['uvloop'] = None; "  # None there makes `import uvloop` fail
    "from udptcp.cli.main import main; sys.exit(main(sys.argv[1:]))"
)


@pytest.mark.parametrize(
    "argv",
    [["echo-server"], ["echo-client", "127.0.0.1", "9", "hi"], ["netem", "--target", "127.0.0.1:9"]],
)
def test_loop_uvloop_without_uvloop_fails_clearly_and_makes_no_coroutine(argv: list[str]) -> None:
    """A fresh interpreter, since uvloop is imported here already; every warning shown."""
    result = subprocess.run(
        [sys.executable, "-W", "always", "-c", WITHOUT_UVLOOP, *argv, "--loop", "uvloop"],
        capture_output=True, text=True, timeout=60, check=False,
    )
    assert result.returncode == EXIT_ERROR
    assert f"udptcp {argv[0]}: " in result.stderr
    assert "--loop uvloop: uvloop is not installed (pip install uvloop)" in result.stderr
    assert "never awaited" not in result.stderr, result.stderr


def test_bench_progress_counts_acknowledged_bytes_not_sent_ones() -> None:
    """Under loss, sent minus in flight (lost segments leave the pipe) is ahead of what is acked."""
    stats = {"bytes_sent": 30 * MB, "bytes_in_flight": 2 * MB, "bytes_acked": 10 * MB}
    assert progress_line(stats, 100 * MB, 5.0) == "      10.0 / 100 MB      2.0 MB/s"


@pytest.mark.parametrize(("pure", "core"), [("1", "pure Python"), ("0", None)])
def test_version_names_the_core_build_and_the_io_path(pure: str, core: str | None) -> None:
    env = {"PATH": "/usr/bin:/bin", "UDPTCP_PURE_PYTHON": pure}
    out = subprocess.run(
        [sys.executable, "-m", "udptcp", "--version"], env=env, capture_output=True, text=True,
        timeout=60, check=True,
    ).stdout.splitlines()
    assert out[0].startswith("udptcp ")
    assert out[1] in ("core: compiled (mypyc)", "core: pure Python")
    if core is not None:
        assert out[1] == f"core: {core}"
    assert out[2].startswith("I/O: own socket (")
