"""``python -m udptcp``: the same as the ``udptcp`` command."""

import sys

from udptcp.cli.main import main

sys.exit(main())
