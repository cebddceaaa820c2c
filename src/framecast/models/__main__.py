"""``python -m framecast.models ...``: the ``framecast models`` commands on their own."""

from __future__ import annotations

import argparse
import sys

from loguru import logger

from framecast.models.cli import add_models_parser, run_models_command

__all__: list[str] = []


def _main() -> int:
    logger.remove()  # an entry point chooses the log level; progress lines go to stderr
    logger.add(sys.stderr, level="WARNING")
    parser = argparse.ArgumentParser(prog="python -m framecast.models")
    add_models_parser(parser.add_subparsers(dest="command", required=True))
    # Accept both "python -m framecast.models fetch" and "... models fetch".
    argv = sys.argv[1:]
    args = parser.parse_args(argv if argv[:1] == ["models"] else ["models", *argv])
    return run_models_command(args)


if __name__ == "__main__":
    sys.exit(_main())
