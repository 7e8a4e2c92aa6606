"""Batch renders (``nuke -x``, ``nuke -t``): pull the frames being rendered before each frame renders.

In batch mode (``nuke.env['gui']`` false) a beforeFrameRender callback on Write nodes pulls, for the
frame about to render, every MatteSDK node upstream of the Write. No GUI calls are made; an error
raises, which aborts the render, so ``nuke -x`` exits non-zero.
"""

from __future__ import annotations

import nuke

from . import node
from .pull import Result, frame_range, prepare, run

_active: set[str] = set()


def register() -> None:
    """Install the callback (from init.py); only in batch mode, the GUI pulls with the Pull button."""
    if not nuke.env.get("gui"):
        nuke.addBeforeFrameRender(before_frame_render, nodeClass="Write")


def before_frame_render() -> None:
    """The callback: pull ``nuke.frame()`` for the MatteSDK nodes upstream of ``nuke.thisNode()``."""
    frame = int(nuke.frame())
    for group in upstream(nuke.thisNode()):
        pull_now(group, (frame, frame, 1))


def upstream(start: nuke.Node) -> list[nuke.Node]:
    """The MatteSDK nodes feeding ``start``, nearest last (so upstream ones are pulled first)."""
    found: list[nuke.Node] = []
    seen: set[str] = set()

    def visit(n: nuke.Node) -> None:
        for i in range(n.inputs()):
            up = n.input(i)
            if up is None or up.fullName() in seen:
                continue
            seen.add(up.fullName())
            visit(up)
            if node.is_matte_node(up):
                found.append(up)

    visit(start)
    return found


def pull_now(group: nuke.Node, frames: tuple[int, int, int] | None = None) -> Result:
    """Pull ``group``'s frames on this thread (batch mode); raises PullError on failure."""
    name = group.fullName()
    if name in _active:  # its own inputs' temporary Writes are rendering
        return Result()
    _active.add(name)
    try:
        job = prepare(group, frames)
        result = run(group, job, on_main=lambda function, *args: function(*args))
    finally:
        _active.discard(name)
    print(f"Matte SDK: {name}: {result.summary()}", flush=True)
    return result


def precompute(frames: str = "") -> list[Result]:
    """Pull every MatteSDK node of the open script (``frames`` like 1001-1100; empty: each node's own)."""
    picked = frame_range(frames) if frames.strip() else None
    return [pull_now(n, picked) for n in nuke.allNodes("Group", recurseGroups=True) if node.is_matte_node(n)]
