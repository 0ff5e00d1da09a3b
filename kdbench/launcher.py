"""The ``kdbench`` console script: Ctrl-C while kdbench is still importing ends in one line.

Importing the command line takes seconds (torch, timm, sklearn, Quantus); an interrupt
then arrives before :func:`kdbench.cli.main` has its handler, and Python printed a
traceback through those imports. Nothing has run at that point, so nothing is lost.
"""

from __future__ import annotations

import sys


def main() -> int:
    try:
        from kdbench.cli import main as cli_main
    except KeyboardInterrupt:
        sys.stderr.write("kdbench: interrupted while starting; nothing was run\n")
        return 130
    return cli_main()
