"""``matte-sdk`` command line. Sub-commands come from plugins through the ``register_commands`` hook."""

from __future__ import annotations

import argparse
import sys

from . import __version__
from .errors import MatteError
from .interrupts import Interrupted, interruptible
from .plugins import plugin_manager


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser with every registered sub-command."""
    parser = argparse.ArgumentParser(prog="matte-sdk", description="Alpha mattes from plates.")
    parser.add_argument("--version", action="version", version=f"matte-sdk {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    plugin_manager().hook.register_commands(subparsers=subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit status. A :class:`MatteError` prints one line and exits 1;
    SIGINT and SIGTERM print one line and exit 130 and 143 (128 + the signal), temps removed."""
    try:
        parser = build_parser()
    except MatteError as exc:  # a plugin that fails to load
        print(f"matte-sdk: error: {exc}", file=sys.stderr)
        return 1
    args = parser.parse_args(argv)
    try:
        with interruptible():
            return int(args.func(args) or 0)
    except MatteError as exc:
        print(f"matte-sdk {args.command}: error: {exc}", file=sys.stderr)
        return 1
    except Interrupted as exc:
        print(f"matte-sdk {args.command}: interrupted ({exc.signal})", file=sys.stderr)
        return exc.status
    except KeyboardInterrupt:
        print(f"matte-sdk {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
