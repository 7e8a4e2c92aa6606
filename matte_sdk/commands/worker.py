"""``matte-sdk worker``: serve matte requests to a host over stdin/stdout (see docs/worker-protocol.md)."""

from __future__ import annotations

from typing import Any

from ..hookspecs import hookimpl


def run(args: Any) -> int:
    from ..worker import serve_stdio

    return serve_stdio(cache_size=args.cache)


@hookimpl
def register_commands(subparsers) -> None:
    p = subparsers.add_parser(
        "worker",
        help="long-lived matting process for hosts (newline-delimited JSON on stdin/stdout)",
        description="Keep engines loaded and answer matte requests from a host plug-in: one JSON request "
        "per line on stdin, one JSON event per line on stdout. Protocol: docs/worker-protocol.md.",
    )
    p.add_argument(
        "--cache", type=int, default=2, metavar="N", help="loaded models to keep, by (model, device, tile) (default 2)"
    )
    p.set_defaults(func=run)
