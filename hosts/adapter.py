"""Host adapters: what ``matte-sdk hosts`` drives, registered through the ``register_hosts`` hook.

A third-party package adds a host exactly as the built-in ones do::

    # my_package/houdini.py
    from matte_sdk import hookimpl
    from matte_sdk_hosts.adapter import HostAdapter

    class Houdini(HostAdapter):
        name, title = "houdini", "Houdini 21"
        ...

    @hookimpl
    def register_hosts(register):
        register(Houdini)

and lists ``houdini = "my_package.houdini"`` under ``[project.entry-points.matte_sdk]``.
"""

from __future__ import annotations

import abc
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from matte_sdk.errors import MatteError
from matte_sdk.plugins import collect


class HostError(MatteError):
    """A host plug-in cannot be packaged or installed (no host found, bad target …)."""


@dataclass(frozen=True)
class Installation:
    """One installation of a host found on this machine."""

    version: str
    location: str
    kind: str = "application"

    @property
    def version_key(self) -> tuple[int, ...]:
        """The version's numbers, for ordering (``16.0v4`` → (16, 0, 4)); a version without any: (-1,)."""
        return tuple(int(p) for p in re.findall(r"\d+", self.version)) or (-1,)


def newest_first(found: Iterable[Installation]) -> list[Installation]:
    """Installations ordered by version, newest first."""
    return sorted(found, key=lambda i: i.version_key, reverse=True)


class HostAdapter(abc.ABC):
    """Describes a host, finds it, packages its plug-in and installs that into the host's user folders."""

    name: ClassVar[str]
    title: ClassVar[str]

    @abc.abstractmethod
    def describe(self) -> str:
        """One paragraph for artists: what the plug-in adds to the host and how it reaches the SDK."""

    @abc.abstractmethod
    def detect(self) -> list[Installation]:
        """Installations of the host on this machine, newest first (may be empty)."""

    @abc.abstractmethod
    def package(self, output: Path) -> Path:
        """Build the installable plug-in at ``output`` (written atomically); returns the path."""

    @abc.abstractmethod
    def install(self, target: Path | None = None) -> str:
        """Install into the host's user folders (or under ``target``); returns a line saying where."""


def zip_output(output: Path | str, what: str) -> Path:
    """``output`` as a Path once it names a ``.zip`` in an existing folder; HostError naming it otherwise.

    ``what`` names the package in the message, e.g. "a Nuke plug-in package"."""
    output = Path(output)
    if output.suffix.lower() != ".zip":
        raise HostError(f"{output}: {what} must be a .zip file")
    if not output.parent.is_dir():
        raise HostError(f"{output}: folder {output.parent} does not exist")
    return output


def adapters() -> dict[str, HostAdapter]:
    """Every registered host adapter by name, in registration order."""
    return {cls.name: cls() for cls in collect("register_hosts")}


def get_adapter(name: str) -> HostAdapter:
    """The adapter called ``name``; HostError naming the known ones otherwise."""
    found = adapters()
    if name not in found:
        raise HostError(f"no host adapter {name!r} is installed (available: {', '.join(found) or 'none'})")
    return found[name]
