"""The ``nnpot`` command line: one module per subcommand, each thin.

Each subcommand module defines ``register(subparsers)`` that adds its parser and sets
``func`` to a function ``run(args) -> int``. Input errors become one line on stderr and
exit code 2.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

# Before torch loads: OpenMP threads that spin while waiting made one MD step 30x slower
# on a busy 2-core machine (measured); sleeping threads cost nothing when it is idle.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

# Subcommand modules, in the order `nnpot --help` lists them. Add one line per module.
SUBCOMMANDS = [
    "nnpot.cli.fit",
    "nnpot.cli.evaluate",
    "nnpot.cli.predict",
    "nnpot.cli.md",
    "nnpot.cli.demo",
    "nnpot.cli.nuclear",
    "nnpot.cli.active",
]


def build_parser() -> argparse.ArgumentParser:
    from nnpot import __version__

    parser = argparse.ArgumentParser(
        prog="nnpot",
        description="Neural-network potentials for atoms and nucleons, with honest uncertainty.",
    )
    parser.add_argument("--version", action="version", version=f"nnpot {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in SUBCOMMANDS:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    from nnpot.errors import InputError
    from nnpot.uq import UQInputError

    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 1
    try:
        return int(args.func(args) or 0)
    except (InputError, UQInputError) as exc:
        print(f"nnpot {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"nnpot {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
