"""Built-in plugins come from code, not installed metadata; third-party ones from the entry-point group,
restricted by $MATTE_SDK_LOAD_PLUGINS."""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import os
import re
import subprocess
import sys
import sysconfig
import textwrap
from pathlib import Path

import pytest

from matte_sdk import hookspecs
from matte_sdk.plugins import DEFAULT_PLUGINS, plugin_manager

ROOT = Path(__file__).resolve().parents[1]


def _registered_commands(modules: list[str]) -> set[str]:
    """The sub-commands these plugin modules register."""
    subparsers = argparse.ArgumentParser().add_subparsers()
    for name in modules:
        register = getattr(importlib.import_module(name), "register_commands", None)
        if register is not None:
            register(subparsers=subparsers)
    return set(subparsers.choices)


BUILTIN_COMMANDS = _registered_commands(list(DEFAULT_PLUGINS))
#: What a checkout on PYTHONPATH has: the commands of plugins in the matte_sdk package itself.
CORE_COMMANDS = _registered_commands([m for m in DEFAULT_PLUGINS if m.startswith("matte_sdk.")])


def _commands(help_text: str) -> set[str]:
    """Sub-command names in ``matte-sdk --help``."""
    lines = help_text.split("positional arguments:", 1)[1].split("options:", 1)[0].splitlines()
    return {line.split()[0] for line in lines if line.startswith("    ") and not line.startswith("     ")}


@pytest.fixture(scope="module")
def bare_site(tmp_path_factory) -> Path:
    """This environment's site-packages without matte-sdk: links to every dependency, but none of the
    project's installed metadata, editable finders or .pth files."""
    site = tmp_path_factory.mktemp("site")
    for entry in Path(sysconfig.get_paths()["purelib"]).iterdir():
        name = entry.name.lower()
        if name.startswith(("matte_sdk", "matte-sdk", "__editable__")) or name.endswith(".pth"):
            continue
        (site / entry.name).symlink_to(entry)
    return site


def _isolated(folder: Path, site: Path, *args: str) -> subprocess.CompletedProcess:
    """``matte-sdk ARGS`` in a Python that sees only the standard library, ``folder`` and ``site`` (no
    site-packages, no $PYTHONPATH), and no metadata of matte-sdk but what ``folder`` holds."""
    code = textwrap.dedent(
        f"""
        import sys
        sys.path[:0] = [{str(folder)!r}, {str(site)!r}]
        import importlib.metadata as md
        own = [d._path for d in md.distributions() if d.metadata["Name"].lower().startswith("matte")]
        assert all(str(p).startswith({str(folder)!r}) for p in own), own
        from matte_sdk.cli import main
        sys.exit(main({list(args)!r}))
        """
    )
    return subprocess.run([sys.executable, "-I", "-S", "-c", code], capture_output=True, text=True, timeout=300)


def _tree(folder: Path, *packages: tuple[str, str]) -> Path:
    """``folder`` with the repository's folders linked in as import packages: (package, folder) pairs."""
    for package, source in packages:
        (folder / package).symlink_to(ROOT / source)
    return folder


def test_builtins_need_no_installed_metadata(tmp_path, bare_site):
    """The packages importable as an install makes them (hosts/ as matte_sdk_hosts …), but no metadata."""
    tree = _tree(
        tmp_path, ("matte_sdk", "matte_sdk"), ("matte_sdk_hosts", "hosts"), ("matte_sdk_converters", "converters")
    )
    proc = _isolated(tree, bare_site, "--help")
    assert proc.returncode == 0, proc.stderr
    assert _commands(proc.stdout) == BUILTIN_COMMANDS
    assert {"matte", "doctor", "eval", "worker", "hosts", "convert"} <= BUILTIN_COMMANDS
    hosts = _isolated(tree, bare_site, "hosts", "list")
    assert hosts.returncode == 0 and "blender: Blender 5.0+" in hosts.stdout.splitlines(), hosts.stderr


def test_a_bare_source_checkout_has_the_sdk_commands(tmp_path, bare_site):
    """Only matte_sdk/ importable (the repository root on the path): its own commands; convert and hosts
    need the install that names converters/ and hosts/ as packages."""
    proc = _isolated(_tree(tmp_path, ("matte_sdk", "matte_sdk")), bare_site, "--help")
    assert proc.returncode == 0, proc.stderr
    assert _commands(proc.stdout) == CORE_COMMANDS
    assert {"matte", "doctor", "eval", "worker"} <= CORE_COMMANDS and not {"convert", "hosts"} & CORE_COMMANDS


def test_stale_egg_info_neither_masks_nor_duplicates_builtins(tmp_path, bare_site):
    """An older install's egg-info in the checkout: fewer built-ins than today, and a module since moved."""
    tree = _tree(
        tmp_path, ("matte_sdk", "matte_sdk"), ("matte_sdk_hosts", "hosts"), ("matte_sdk_converters", "converters")
    )
    egg = tree / "matte_sdk.egg-info"
    egg.mkdir()
    (egg / "PKG-INFO").write_text("Metadata-Version: 2.1\nName: matte-sdk\nVersion: 0.0.1\n")
    (egg / "entry_points.txt").write_text("[matte_sdk]\nmatte = matte_sdk.commands.matte\nreport = matte_sdk.report\n")
    proc = _isolated(tree, bare_site, "--help")
    assert proc.returncode == 0, proc.stderr
    assert _commands(proc.stdout) == BUILTIN_COMMANDS


@pytest.fixture
def third_party(tmp_path) -> Path:
    """A folder holding an installed third-party distribution: a ``hello`` command, plus a stale entry
    point for a built-in as an older matte-sdk install's metadata would have."""
    (tmp_path / "hello_plugin.py").write_text(
        textwrap.dedent(
            """
            from matte_sdk.hookspecs import hookimpl

            @hookimpl
            def register_commands(subparsers):
                subparsers.add_parser("hello", help="say hello").set_defaults(func=lambda args: print("hello"))
            """
        )
    )
    info = tmp_path / "matte_hello-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: matte-hello\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[matte_sdk]\nhello = hello_plugin\nmatte = matte_sdk.commands.matte\n")
    return tmp_path


def _run(folder: Path, *args: str, allowed: str | None = None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "MATTE_SDK_LOAD_PLUGINS"}
    env["PYTHONPATH"] = str(folder)
    if allowed is not None:
        env["MATTE_SDK_LOAD_PLUGINS"] = allowed
    return subprocess.run(
        [sys.executable, "-m", "matte_sdk", *args], capture_output=True, text=True, timeout=300, env=env
    )


def test_third_party_plugins_load_once_and_the_variable_restricts_them(third_party):
    every = _run(third_party, "--help")
    assert every.returncode == 0, every.stderr
    assert _commands(every.stdout) == BUILTIN_COMMANDS | {"hello"}  # the stale "matte" entry point: no clash
    assert _run(third_party, "hello").stdout == "hello\n"
    for allowed in ("hello", "matte-hello", " matte_hello ,"):  # entry-point or distribution name
        assert _commands(_run(third_party, "--help", allowed=allowed).stdout) == BUILTIN_COMMANDS | {"hello"}
    none = _run(third_party, "--help", allowed="")
    assert none.returncode == 0 and _commands(none.stdout) == BUILTIN_COMMANDS


def test_the_variable_naming_a_missing_plugin_is_one_line(third_party):
    proc = _run(third_party, "--help", allowed="hello,nosuch")
    assert proc.returncode == 1 and proc.stdout == ""
    assert proc.stderr.splitlines() == [
        "matte-sdk: error: MATTE_SDK_LOAD_PLUGINS names nosuch: no such plugin installed"
    ]


def test_a_broken_plugin_is_named(third_party):
    (third_party / "hello_plugin.py").write_text("import no_such_module\n")
    proc = _run(third_party, "--help")
    assert proc.returncode == 1
    (line,) = proc.stderr.splitlines()
    assert "plugin hello (hello_plugin, from matte-hello) failed to load: ModuleNotFoundError" in line


def test_each_builtin_is_registered_once_under_its_module_name():
    names = [name for name, _ in plugin_manager().list_name_plugin() if name in DEFAULT_PLUGINS]
    assert "matte_sdk.commands.matte" in names and names == list(DEFAULT_PLUGINS)
    assert all(plugin_manager().get_plugin(name).__name__ == name for name in names)


def test_hookspec_docstrings_name_classes_that_exist():
    source = Path(hookspecs.__file__).read_text(encoding="utf-8")
    named = re.findall(r":(?:class|data|mod):`([\w.]+)`", source)
    assert "matte_sdk.engines.base.Engine" in named
    for dotted in named:
        module, _, attr = dotted.rpartition(".")
        if not module:  # a module (:mod:`argparse`), or a name in hookspecs itself (:data:`hookimpl`)
            assert hasattr(hookspecs, dotted) or importlib.util.find_spec(dotted), dotted
        else:
            assert hasattr(importlib.import_module(module), attr), dotted
