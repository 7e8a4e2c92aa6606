"""``matte-sdk hosts``: list host adapters, package and install their plug-ins.

It lives with the adapters it drives (as ``convert`` lives with the converters), so the core package
``matte_sdk`` imports nothing from ``matte_sdk_hosts``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from matte_sdk.hookspecs import hookimpl

from .adapter import adapters, get_adapter


def list_hosts(args: Any) -> int:
    """Every registered host, what it adds, and the installations found."""
    for adapter in adapters().values():
        print(f"{adapter.name}: {adapter.title}")
        print(f"  {adapter.describe()}")
        found = adapter.detect()
        for inst in found:
            print(f"  found {inst.version} ({inst.kind}): {inst.location}")
        if not found:
            print("  not found on this machine")
    return 0


def install(args: Any) -> int:
    """Install one host's plug-in."""
    print(get_adapter(args.host).install(Path(args.target) if args.target else None))
    return 0


def package(args: Any) -> int:
    """Build one host's installable plug-in file."""
    print(get_adapter(args.host).package(Path(args.output)))
    return 0


HOST_HELP = "blender, nuke, gimp, or a host a plugin registers (see `matte-sdk hosts list`)"


@hookimpl
def register_commands(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "hosts",
        help="host plug-ins: list, package, install (Blender, Nuke, GIMP …)",
        description="Host plug-ins: the built-in hosts and any a third-party plugin registers.",
    )
    sub = p.add_subparsers(dest="hosts_command", metavar="ACTION", required=True)
    sub.add_parser("list", help="registered hosts and the installations found").set_defaults(func=list_hosts)
    q = sub.add_parser("install", help="install a host's plug-in into its user folders, enabled")
    q.add_argument("host", metavar="HOST", help=HOST_HELP)
    q.add_argument(
        "--target",
        metavar="DIR",
        help="install under DIR instead of the host's default user folders "
        "(Blender: a user-resources folder, as in $BLENDER_USER_RESOURCES; Nuke: a folder like ~/.nuke whose "
        "init.py loads the plug-in; GIMP: a GIMP 3 profile folder, as in $GIMP3_DIRECTORY)",
    )
    q.set_defaults(func=install)
    q = sub.add_parser("package", help="build a host's installable plug-in file")
    q.add_argument("host", metavar="HOST", help=HOST_HELP)
    q.add_argument("-o", "--output", required=True, metavar="FILE", help="output file: a .zip for every built-in host")
    q.set_defaults(func=package)
