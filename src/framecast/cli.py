"""The ``framecast`` command: ``run`` the voice bot, manage ``models``."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from framecast.models.cli import add_models_parser

__all__ = ["main"]


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every subcommand."""
    parser = argparse.ArgumentParser(prog="framecast", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    add_models_parser(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script; returns the exit status."""
    args = build_parser().parse_args(argv)
    status: int = args.handler(args)
    return status


if __name__ == "__main__":
    sys.exit(main())
