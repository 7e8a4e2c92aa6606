"""The one plugin manager: hookspecs from :mod:`matte_sdk.hookspecs`, built-in plugins listed here in code,
third-party plugins from the ``matte_sdk`` entry-point group.

Built-ins are modules with hook implementations, registered exactly as third-party plugins are, but named
in :data:`DEFAULT_PLUGINS` rather than in installed metadata: a source checkout that was never installed
has them, and stale metadata of an older install can neither hide nor duplicate them.
``$MATTE_SDK_LOAD_PLUGINS`` restricts which third-party plugins load.
"""

from __future__ import annotations

import functools
import importlib
import importlib.metadata
import os
import re
from types import ModuleType

import pluggy

from . import hookspecs
from .errors import MatteError

#: Modules of the built-in plugins, registered under these names in this order.
DEFAULT_PLUGINS: tuple[str, ...] = (
    "matte_sdk.engines.onnxruntime",
    "matte_sdk.engines.tensorrt",
    "matte_sdk.commands.matte",
    "matte_sdk.commands.doctor",
    "matte_sdk.commands.eval",
    "matte_sdk.commands.trimap",
    "matte_sdk.commands.worker",
    "matte_sdk.commands.farm",
    "matte_sdk_converters.command",
    "matte_sdk_converters.presets",
    "matte_sdk_hosts.command",
    # Host adapters (matte_sdk_hosts is the hosts/ folder), one line each:
    "matte_sdk_hosts.blender_adapter",
    "matte_sdk_hosts.nuke_adapter",
    "matte_sdk_hosts.gimp_adapter",
)
#: Environment variable: comma-separated entry-point or distribution names of the third-party plugins to
#: load. Unset: every installed one. Empty: none. Built-ins always load.
LOAD_PLUGINS = "MATTE_SDK_LOAD_PLUGINS"
#: The import packages of matte-sdk's own distribution.
OWN_PACKAGES = frozenset(module.partition(".")[0] for module in DEFAULT_PLUGINS)


class PluginError(MatteError):
    """A third-party plugin fails to load, or ``$MATTE_SDK_LOAD_PLUGINS`` names one that is not installed."""


@functools.cache
def plugin_manager() -> pluggy.PluginManager:
    """The process-wide plugin manager: the built-ins, then the third-party entry points allowed by
    ``$MATTE_SDK_LOAD_PLUGINS``."""
    pm = pluggy.PluginManager("matte_sdk")
    pm.add_hookspecs(hookspecs)
    for name in DEFAULT_PLUGINS:
        module = _import_builtin(name)
        if module is not None:
            pm.register(module, name=name)
    _load_third_party(pm, os.environ.get(LOAD_PLUGINS))
    return pm


def collect(hook_name: str) -> list:
    """Call a ``register_*`` hook and return everything the plugins registered, in order."""
    items: list = []
    getattr(plugin_manager().hook, hook_name)(register=items.append)
    return items


def _import_builtin(name: str) -> ModuleType | None:
    """The built-in plugin module, or None when the package holding it is not importable here (a source
    checkout on ``PYTHONPATH`` has ``matte_sdk`` but not the ``hosts/`` and ``converters/`` packages, which
    only an install names ``matte_sdk_hosts`` and ``matte_sdk_converters``)."""
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name in OWN_PACKAGES:
            return None
        raise


def _normalised(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _load_third_party(pm: pluggy.PluginManager, allowed: str | None) -> None:
    """Register the ``matte_sdk`` entry points (only those named in ``allowed``, a comma list, if given).

    Entry points into matte-sdk's own packages are skipped: the project declares none, so they are an
    older install's metadata for built-ins that are already registered."""
    wanted = None if allowed is None else {w.strip() for w in allowed.split(",") if w.strip()}
    matched: set[str] = set()
    for ep in importlib.metadata.entry_points(group="matte_sdk"):
        if ep.module.partition(".")[0] in OWN_PACKAGES:
            continue
        dist = ep.dist.name if ep.dist is not None else ""
        if wanted is not None:
            hits = {w for w in wanted if w == ep.name or _normalised(w) == _normalised(dist)}
            if not hits:
                continue
            matched |= hits
        if pm.get_plugin(ep.name) is not None:
            continue  # the same distribution found twice on sys.path
        try:
            plugin = ep.load()
        except Exception as exc:
            raise PluginError(
                f"plugin {ep.name} ({ep.value}, from {dist or 'unknown distribution'}) failed to load: "
                f"{type(exc).__name__}: {exc}; uninstall it, or leave it out with {LOAD_PLUGINS}"
            ) from None
        if not pm.is_registered(plugin):
            pm.register(plugin, name=ep.name)
    if wanted is not None and wanted - matched:
        raise PluginError(f"{LOAD_PLUGINS} names {', '.join(sorted(wanted - matched))}: no such plugin installed")
