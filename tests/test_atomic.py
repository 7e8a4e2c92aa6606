"""Atomic writes: units of several files, and the clean-up of temps that killed runs left."""

import os
import signal
import subprocess
import sys
import textwrap

import pytest

from matte_sdk import atomic
from matte_sdk.atomic import _host, atomic_paths, remove_stale_temps
from matte_sdk.interrupts import Interrupted, interruptible


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


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_an_interrupt_between_a_units_renames_waits_until_the_unit_is_in_place(tmp_path, monkeypatch, signum):
    targets = [tmp_path / "a.exr", tmp_path / "fg.exr"]
    rename = os.replace

    def rename_then_interrupt(src, dst):
        rename(src, dst)
        if dst == targets[0]:
            os.kill(os.getpid(), signum)  # lands between the unit's two renames

    monkeypatch.setattr(atomic.os, "replace", rename_then_interrupt)
    with pytest.raises(Interrupted) as caught, interruptible(), atomic_paths(targets) as temps:
        for t in temps:
            t.write_bytes(b"new")
    assert caught.value.signal == signal.Signals(signum).name
    assert sorted(os.listdir(tmp_path)) == ["a.exr", "fg.exr"]  # the whole unit, no temps


def test_after_hold_renames_no_unit_lands(tmp_path):
    """What a farm worker does before it is killed: later units stay temps, never half in place."""
    script = textwrap.dedent(f"""
        import threading
        from matte_sdk.atomic import atomic_paths, hold_renames

        def write():
            with atomic_paths([{str(tmp_path / "a.exr")!r}, {str(tmp_path / "fg.exr")!r}]) as temps:
                for t in temps:
                    t.write_bytes(b"x")

        hold_renames()
        writer = threading.Thread(target=write, daemon=True)
        writer.start()
        writer.join(1.0)
        print("waiting" if writer.is_alive() else "finished")
        """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True)
    assert proc.stdout.split() == ["waiting"]
    assert not (tmp_path / "a.exr").exists() and not (tmp_path / "fg.exr").exists()
