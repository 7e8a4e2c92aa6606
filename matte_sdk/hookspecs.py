"""Plugin hooks. Built-in engines, commands, presets and hosts implement them exactly as third parties do.

A plugin is a module or object with functions decorated by :data:`hookimpl`. A third-party plugin is
listed under the ``matte_sdk`` entry-point group of its distribution; the built-ins are listed in
:data:`matte_sdk.plugins.DEFAULT_PLUGINS`::

    [project.entry-points.matte_sdk]
    my_engine = "my_package.engine"
"""

from __future__ import annotations

from collections.abc import Callable

import pluggy

hookspec = pluggy.HookspecMarker("matte_sdk")
hookimpl = pluggy.HookimplMarker("matte_sdk")


@hookspec
def register_engines(register: Callable[[type], None]) -> None:
    """Register engine classes (subclasses of :class:`matte_sdk.engines.base.Engine`)."""


@hookspec
def register_commands(subparsers) -> None:
    """Add sub-commands to ``matte-sdk``.

    ``subparsers`` is the :mod:`argparse` sub-parser action; each command's parser must set
    ``func=callable(args) -> int`` through ``set_defaults``.
    """


@hookspec
def register_hosts(register: Callable[[type], None]) -> None:
    """Register host adapter classes (subclasses of :class:`matte_sdk_hosts.adapter.HostAdapter`).

    An adapter describes its host, detects installations of it, packages its plug-in and installs it
    into the host's user folders; ``matte-sdk hosts`` lists and drives every registered adapter.
    """


@hookspec
def register_presets(register: Callable[[object], None]) -> None:
    """Register ``matte-sdk convert`` presets (:class:`matte_sdk_converters.presets.Preset` objects)."""
