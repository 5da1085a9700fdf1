"""``python -m udptcp.netem``: the relay on its own, without the rest of the ``udptcp`` CLI."""

from __future__ import annotations

import argparse
import asyncio
import sys

from udptcp.netem.cli import add_arguments, run
from udptcp.netem.spec import SPEC_HELP


def main() -> int:
    """Parse the command line and relay until stopped."""
    parser = argparse.ArgumentParser(
        prog="python -m udptcp.netem",
        description="Relay UDP between clients and one server, impairing each direction.",
        epilog=SPEC_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_arguments(parser)
    return asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    sys.exit(main())
