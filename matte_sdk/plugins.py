"""The one plugin manager: hookspecs from :mod:`matte_sdk.hookspecs`, plugins from entry points."""

from __future__ import annotations

import functools

import pluggy

from . import hookspecs


@functools.cache
def plugin_manager() -> pluggy.PluginManager:
    """The process-wide plugin manager, with every ``matte_sdk`` entry point loaded."""
    pm = pluggy.PluginManager("matte_sdk")
    pm.add_hookspecs(hookspecs)
    pm.load_setuptools_entrypoints("matte_sdk")
    return pm


def collect(hook_name: str) -> list:
    """Call a ``register_*`` hook and return everything the plugins registered, in order."""
    items: list = []
    getattr(plugin_manager().hook, hook_name)(register=items.append)
    return items
