"""Atomic writes: units of several files, and the clean-up of temps that killed runs left."""

import os
import subprocess
import sys

import pytest

from matte_sdk.atomic import _host, atomic_paths, remove_stale_temps


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_a_unit_is_renamed_only_when_every_file_is_written(tmp_path):
    targets = [tmp_path / "a.exr", tmp_path / "b.exr"]
    with pytest.raises(RuntimeError), atomic_paths(targets) as temps:
        temps[0].write_bytes(b"a")
        raise RuntimeError("the second file failed")
    assert os.listdir(tmp_path) == []
    with atomic_paths(targets) as temps:
        for t in temps:
            t.write_bytes(b"x")
        assert all(t.name.startswith(f".{p.name}.matte-sdk-") for t, p in zip(temps, targets, strict=True))
    assert sorted(os.listdir(tmp_path)) == ["a.exr", "b.exr"]


def test_stale_temps_of_dead_runs_are_removed_and_nothing_else(tmp_path):
    dead, host = _dead_pid(), _host()
    stale = [
        tmp_path / f".a.0001.exr.matte-sdk-{host}-{dead}-abc_1234.exr",
        tmp_path / f".fg.exr.matte-sdk-{host}-{dead}-x.exr",
    ]
    kept = [
        tmp_path / f".a.0001.exr.matte-sdk-{host}-{os.getpid()}-abc.exr",  # a live writer
        tmp_path / f".a.0001.exr.matte-sdk-otherhost-{dead}-abc.exr",  # another machine's process
        tmp_path / f".a.0002.exr.matte-sdk-{host}-{dead}-abc.exr",  # an output this run does not write
        tmp_path / f".a.0001.exr.matte-sdk-{host}-{dead}-abc.png",  # not the output's suffix
        tmp_path / ".a.0001.exr.tmp",  # someone else's naming
        tmp_path / "a.0001.exr",
    ]
    for p in stale + kept:
        p.write_bytes(b"partial")
    removed = remove_stale_temps([tmp_path / "a.0001.exr", tmp_path / "fg.exr", tmp_path / "missing" / "x.exr"])
    assert sorted(removed) == sorted(stale)
    assert all(p.exists() for p in kept) and not any(p.exists() for p in stale)
