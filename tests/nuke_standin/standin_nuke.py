"""TEST STAND-IN for Foundry's ``nuke`` module: NOT the real Nuke API, only enough of it for the tests.

Nuke is proprietary and cannot run here, so the Matte SDK plug-in is tested against this module, which
implements just the calls the plug-in makes, with the behaviour Foundry's Python developer guide
documents: nodes and knobs, Group contexts, ``nuke.execute`` rendering a Write from Reads of real EXR
files (through OpenImageIO; Copy, Input, Output, Group pass pixels along), ``ProgressTask``,
``executeInMainThread[WithResult]`` (a main-thread queue the test pumps), ``addBeforeRender`` /
``addBeforeFrameRender`` callbacks (an exception aborts the render with RuntimeError), ``env`` (in
batch mode ``message``, ``ProgressTask`` and ``executeInMainThread*`` raise: no GUI calls there), and
start-up (``init.py`` of each plug-in path folder, ``pluginAddPath`` running the added folder's
``init.py``, then ``menu.py`` in GUI mode). What it does not do: .nk scripts (``scriptOpen`` runs a
Python file that builds the graph), colour management, viewers, any node class not listed in ``_KNOBS``.

In-process: ``sys.modules["nuke"] = standin_nuke`` then :func:`standin_reset` and :func:`standin_start`.
As a process, like ``nuke -t``: ``python standin_nuke.py -t SCRIPT.py [ARGS]`` (batch mode).
"""

from __future__ import annotations

import os
import queue
import re
import runpy
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import OpenImageIO as oiio

env: dict[str, Any] = {}
standin_messages: list[str] = []
standin_saved: list[str] = []
_callbacks: dict[str, list[tuple[Callable, tuple, dict, str]]] = {}
_menus: dict[str, Menu] = {}
_plugin_path: list[str] = []
_context: list[Group] = []
_this: list[Node] = []
_frame = [1]
_main_queue: queue.Queue = queue.Queue()
_main_thread = threading.main_thread()


def _main_only(what: str) -> None:
    """Nuke's rule in the GUI: nodes are touched only on the main thread."""
    if env.get("gui") and threading.current_thread() is not _main_thread:
        raise RuntimeError(f"stand-in nuke: {what} off the main thread (use nuke.executeInMainThread)")


# -- knobs ------------------------------------------------------------------------------------------
class Knob:
    def __init__(self, name: str, label: str | None = None, value: Any = "") -> None:
        self._name, self.label, self._value, self.node = name, label or name, value, None
        self.tooltip = ""

    def name(self) -> str:
        return self._name

    def value(self) -> Any:
        return self._value

    getValue = value

    def setValue(self, value: Any) -> bool:
        self._value = value
        return True

    def setTooltip(self, text: str) -> None:
        self.tooltip = text


class Tab_Knob(Knob):
    pass


class File_Knob(Knob):
    pass


class String_Knob(Knob):
    pass


class Channel_Knob(Knob):
    pass


class Int_Knob(Knob):
    def __init__(self, name: str, label: str | None = None) -> None:
        super().__init__(name, label, 0)

    def setValue(self, value: Any) -> bool:
        self._value = int(value)
        return True


class Boolean_Knob(Knob):
    def __init__(self, name: str, label: str | None = None, value: bool = False) -> None:
        super().__init__(name, label, bool(value))

    def setValue(self, value: Any) -> bool:
        self._value = bool(value)
        return True


class Enumeration_Knob(Knob):
    def __init__(self, name: str, label: str, values: list[str]) -> None:
        super().__init__(name, label, values[0])
        self.values = list(values)

    def setValue(self, value: Any) -> bool:
        if value not in self.values:
            raise ValueError(f"{self._name}: {value!r} is not one of {self.values}")
        self._value = value
        return True


class Text_Knob(Knob):
    def __init__(self, name: str, label: str | None = None, text: str = "") -> None:
        super().__init__(name, label, text)


class PyScript_Knob(Knob):
    def __init__(self, name: str, label: str | None = None, command: str = "") -> None:
        super().__init__(name, label, command)

    def execute(self) -> None:
        """Run the command as Nuke does for a button press: ``nuke.thisNode()`` is the knob's node."""
        _this.append(self.node)
        try:
            if self._value:
                exec(self._value, {"nuke": sys.modules["nuke"]})
        finally:
            _this.pop()


# Knobs every node of a class has (name -> default); other classes cannot be created.
_KNOBS: dict[str, dict[str, Any]] = {
    "Read": {"file": "", "first": 1, "last": 1, "origfirst": 1, "origlast": 1, "raw": False, "on_error": "error"},
    "Write": {
        "file": "",
        "channels": "rgb",
        "file_type": "",
        "datatype": "16 bit half",
        "compression": "Zip (1 scanline)",
        "metadata": "default metadata",
        "autocrop": False,
        "raw": False,
    },
    "Copy": {**{f"from{i}": "none" for i in range(4)}, **{f"to{i}": "none" for i in range(4)}, "bbox": "union"},
    "Input": {"number": 0},
    "Output": {},
    "Group": {},
    "Root": {"name": "", "first_frame": 1, "last_frame": 100, "workingSpaceLUT": "scene_linear (linear)"},
}


# -- nodes ------------------------------------------------------------------------------------------
class Node:
    def __init__(self, cls: str, parent: Group | None) -> None:
        self._class, self._parent = cls, parent
        self._knobs: dict[str, Knob] = {}
        self._inputs: list[Node | None] = []
        self._name = ""
        for name, default in {**_KNOBS[cls], "disable": False}.items():
            knob: Knob = Boolean_Knob(name, value=default) if isinstance(default, bool) else Knob(name, value=default)
            self.addKnob(knob)
        if cls == "Read":
            self.addKnob(PyScript_Knob("reload", "Reload"))

    def Class(self) -> str:
        return self._class

    def name(self) -> str:
        return self._name

    def fullName(self) -> str:
        if self._parent is None or self._parent._class == "Root":
            return self._name
        return f"{self._parent.fullName()}.{self._name}"

    def setName(self, name: str, uncollide: bool = True, updateExpressions: bool = False) -> None:
        taken = {n._name for n in self._parent._children if n is not self} if self._parent else set()
        if name in taken:
            if not uncollide:
                raise ValueError(f"name {name!r} is in use")
            base, n = re.sub(r"\d+$", "", name), 1
            while f"{base}{n}" in taken:
                n += 1
            name = f"{base}{n}"
        self._name = name

    def addKnob(self, knob: Knob) -> None:
        knob.node = self
        self._knobs[knob.name()] = knob

    def knob(self, name: str) -> Knob | None:
        _main_only(f"{self._name}.knob({name!r})")
        return self._knobs.get(name)

    def knobs(self) -> dict[str, Knob]:
        return dict(self._knobs)

    def __getitem__(self, name: str) -> Knob:
        _main_only(f"{self._name}[{name!r}]")
        knob = self._knobs.get(name)
        if knob is None:
            raise NameError(f"{self.fullName()}: no knob named {name!r}")
        return knob

    def input(self, i: int) -> Node | None:
        _main_only(f"{self._name}.input()")
        return self._inputs[i] if i < len(self._inputs) else None

    def setInput(self, i: int, node: Node | None) -> bool:
        _main_only(f"{self._name}.setInput()")
        self._inputs += [None] * (i + 1 - len(self._inputs))
        self._inputs[i] = node
        while self._inputs and self._inputs[-1] is None:
            self._inputs.pop()
        return True

    def inputs(self) -> int:
        return len(self._inputs)

    def __repr__(self) -> str:
        return f"<stand-in {self._class} {self.fullName()}>"


class Group(Node):
    def __init__(self, cls: str, parent: Group | None) -> None:
        super().__init__(cls, parent)
        self._children: list[Node] = []

    def nodes(self) -> list[Node]:
        return list(self._children)

    def node(self, name: str) -> Node | None:
        return next((n for n in self._children if n._name == name), None)

    def begin(self) -> Group:
        _context.append(self)
        return self

    def end(self) -> None:
        _context.pop()

    def __enter__(self) -> Group:
        return self.begin()

    def __exit__(self, *exc: object) -> None:
        self.end()

    def inputs(self) -> int:
        return max(len(self._inputs), len(self._input_nodes()))

    def _input_nodes(self) -> list[Node]:
        return [n for n in self._children if n._class == "Input"]


def _create(cls: str, knobs: dict[str, Any]) -> Node:
    _main_only(f"creating a {cls}")
    if cls not in _KNOBS or cls == "Root":
        raise RuntimeError(f"stand-in nuke: node class {cls!r} is not implemented")
    parent = _context[-1]
    node: Node = Group(cls, parent) if cls == "Group" else Node(cls, parent)
    parent._children.append(node)
    if cls == "Input":
        node["number"].setValue(len(parent._input_nodes()) - 1)
    node.setName(str(knobs.pop("name", f"{cls}1")))
    for name, value in knobs.items():
        node[name].setValue(value)
    return node


class _Nodes:
    """``nuke.nodes.Read(file=...)``: a node of that class in the current context, knobs set."""

    def __getattr__(self, cls: str) -> Callable[..., Node]:
        return lambda **knobs: _create(cls, knobs)


nodes = _Nodes()


def createNode(cls: str, knobs: str = "", inpanel: bool = True) -> Node:
    return _create(cls, {})


def root() -> Group:
    return _context[0]


def thisNode() -> Node:
    return _this[-1] if _this else root()


def thisGroup() -> Group:
    return _context[-1]


def toNode(name: str) -> Node | None:
    node: Node | None = root()
    for part in name.split("."):
        node = node.node(part) if isinstance(node, Group) else None
    return node


def allNodes(filter: str | None = None, group: Group | None = None, recurseGroups: bool = False) -> list[Node]:
    found = []
    for n in (group or _context[-1])._children:
        if filter is None or n._class == filter:
            found.append(n)
        if recurseGroups and isinstance(n, Group):
            found += allNodes(filter, n, True)
    return found


def delete(node: Node) -> None:
    _main_only(f"deleting {node._name}")
    node._parent._children.remove(node)


def frame() -> int:
    return _frame[0]


# -- rendering --------------------------------------------------------------------------------------
_EXR_TO_NUKE = {"R": "red", "G": "green", "B": "blue", "A": "alpha"}
_WRITE_CHANNELS = {
    "rgb": ["rgba.red", "rgba.green", "rgba.blue"],
    "rgba": ["rgba.red", "rgba.green", "rgba.blue", "rgba.alpha"],
    "alpha": ["rgba.alpha"],
}


class _Plane:
    """Pixels of one frame: Nuke channel name -> H×W float32 of the data window, and the EXR windows."""

    def __init__(self, channels: dict[str, np.ndarray], window: tuple[int, ...]) -> None:
        self.channels, self.window = channels, window


def _frame_path(pattern: str, frame: int) -> str:
    pattern = re.sub(r"#+", lambda m: f"%0{len(m.group(0))}d", pattern)
    return pattern % frame if "%" in pattern else pattern


def _read(node: Node, frame: int) -> _Plane:
    first, last = int(node["first"].value()), int(node["last"].value())
    path = _frame_path(node["file"].value(), min(max(frame, first), last))
    inp = oiio.ImageInput.open(path) if path else None
    if inp is None:
        raise RuntimeError(f"{node.fullName()}: Read error: cannot open {path!r} ({oiio.geterror().strip()})")
    spec = inp.spec()
    data = np.asarray(inp.read_image(0, 0, 0, spec.nchannels, oiio.FLOAT)).reshape(spec.height, spec.width, -1)
    inp.close()
    channels = {}
    for i, name in enumerate(spec.channelnames):
        layer, _, last_part = name.rpartition(".")
        nuke_name = f"{layer or 'rgba'}.{_EXR_TO_NUKE.get(last_part, last_part)}"
        channels[nuke_name] = np.ascontiguousarray(data[..., i])
    window = (spec.x, spec.y, spec.width, spec.height, spec.full_x, spec.full_y, spec.full_width, spec.full_height)
    return _Plane(channels, window)


def _render(node: Node, frame: int) -> _Plane:
    source = node.input(0)
    if node["disable"].value() and node._class != "Read":
        return _render(_needed(node, source, 0), frame)
    if node._class == "Read":
        return _read(node, frame)
    if node._class in ("Write", "Output"):
        return _render(_needed(node, source, 0), frame)
    if node._class == "Input":
        group = node._parent
        return _render(_needed(group, group.input(int(node["number"].value())), node["number"].value()), frame)
    if node._class == "Group":
        output = next((n for n in node._children if n._class == "Output"), None)
        return _render(_needed(node, output, "Output"), frame)
    if node._class == "Copy":
        b = _render(_needed(node, source, "B"), frame)
        a = _render(_needed(node, node.input(1), "A"), frame)
        if a.window[:4] != b.window[:4]:
            raise RuntimeError(f"{node.fullName()}: stand-in Copy needs equal data windows, got {a.window} {b.window}")
        out = dict(b.channels)
        for i in range(4):
            src, dst = node[f"from{i}"].value(), node[f"to{i}"].value()
            if src != "none" and dst != "none":
                out[dst] = a.channels.get(src, np.zeros_like(next(iter(b.channels.values()))))
        return _Plane(out, b.window)
    raise RuntimeError(f"stand-in nuke: cannot render {node._class}")


def _needed(node: Node, up: Node | None, which: Any) -> Node:
    if up is None:
        raise RuntimeError(f"{node.fullName()}: input {which} is not connected")
    return up


def _write(node: Node, frame: int) -> None:
    plane = _render(node, frame)
    wanted = node["channels"].value()
    names = list(plane.channels) if wanted == "all" else _WRITE_CHANNELS[wanted]
    shape = next(iter(plane.channels.values())).shape
    pixels = np.stack([plane.channels.get(n, np.zeros(shape, np.float32)) for n in names], axis=-1)
    fmt = "float" if node["datatype"].value() == "32 bit float" else "half"
    x, y, w, h, fx, fy, fw, fh = plane.window
    spec = oiio.ImageSpec(w, h, len(names), fmt)
    spec.x, spec.y, spec.full_x, spec.full_y, spec.full_width, spec.full_height = x, y, fx, fy, fw, fh
    spec.channelnames = tuple(
        {"red": "R", "green": "G", "blue": "B", "alpha": "A"}[n.split(".")[1]] if n.startswith("rgba.") else n
        for n in names
    )
    spec.attribute("compression", "none" if node["compression"].value() == "none" else "zip")
    path = _frame_path(node["file"].value(), frame)
    out = oiio.ImageOutput.create(path)
    if out is None or not out.open(path, spec):
        raise RuntimeError(f"{node.fullName()}: cannot write {path} ({oiio.geterror()})")
    out.write_image(np.ascontiguousarray(pixels, dtype=np.float32))
    out.close()


def execute(node: Node, first: int, last: int | None = None, incr: int = 1) -> None:
    """Render a Write for frames first..last; callbacks run before the render and before each frame."""
    _main_only(f"executing {node._name}")
    if node._class != "Write":
        raise RuntimeError(f"{node.fullName()}: cannot execute a {node._class}")
    last = first if last is None else last
    _this.append(node)
    try:
        _run_callbacks("beforeRender", node)
        for f in range(int(first), int(last) + 1, int(incr)):
            _frame[0] = f
            _run_callbacks("beforeFrameRender", node)
            _write(node, f)
    finally:
        _this.pop()


def _run_callbacks(kind: str, node: Node) -> None:
    for call, args, kwargs, cls in list(_callbacks.get(kind, [])):
        if cls in ("*", node._class):
            try:
                call(*args, **kwargs)
            except Exception as exc:  # Nuke: "If they throw an exception, the render aborts."
                raise RuntimeError(f"{kind} callback failed: {exc}") from exc


def addBeforeRender(call: Callable, args: tuple = (), kwargs: dict | None = None, nodeClass: str = "Write") -> None:
    _callbacks.setdefault("beforeRender", []).append((call, tuple(args), dict(kwargs or {}), nodeClass))


def addBeforeFrameRender(
    call: Callable, args: tuple = (), kwargs: dict | None = None, nodeClass: str = "Write"
) -> None:
    _callbacks.setdefault("beforeFrameRender", []).append((call, tuple(args), dict(kwargs or {}), nodeClass))


# -- GUI --------------------------------------------------------------------------------------------
class ProgressTask:
    """Records messages and progress; ``standin_cancel_when(task)`` (set by a test) presses Cancel."""

    standin_cancel_when: Callable[[ProgressTask], bool] | None = None
    standin_tasks: list[ProgressTask] = []

    def __init__(self, title: str) -> None:
        _gui_only("nuke.ProgressTask")
        self.title, self.messages, self.progress, self.cancelled = title, [], [], False
        ProgressTask.standin_tasks.append(self)

    def setMessage(self, text: str) -> None:
        self.messages.append(text)
        if ProgressTask.standin_cancel_when is not None and ProgressTask.standin_cancel_when(self):
            self.cancelled = True

    def setProgress(self, percent: int) -> None:
        self.progress.append(int(percent))

    def isCancelled(self) -> bool:
        return self.cancelled


def _gui_only(what: str) -> None:
    """The plug-in promises no GUI calls in batch mode; the stand-in holds it to that."""
    if not env.get("gui"):
        raise RuntimeError(f"stand-in nuke: {what} called in batch mode")


def message(text: str) -> None:
    _gui_only("nuke.message")
    standin_messages.append(text)


def executeInMainThread(call: Callable, args: tuple = (), kwargs: dict | None = None) -> None:
    _gui_only("nuke.executeInMainThread")
    _main_queue.put((call, tuple(args), dict(kwargs or {}), None))


def executeInMainThreadWithResult(call: Callable, args: tuple = (), kwargs: dict | None = None) -> Any:
    _gui_only("nuke.executeInMainThreadWithResult")
    if threading.current_thread() is _main_thread:
        return call(*args, **(kwargs or {}))
    box: list = []
    done = threading.Event()
    _main_queue.put((call, tuple(args), dict(kwargs or {}), (box, done)))
    done.wait()
    return box[0]


def standin_run_main_loop(until: Callable[[], bool], timeout: float = 300.0) -> None:
    """Pump the main-thread queue (the test is Nuke's event loop) until ``until()``, then drain it."""
    import time

    deadline = time.monotonic() + timeout
    while True:
        finished = until()
        try:
            while True:
                call, args, kwargs, reply = _main_queue.get(timeout=0 if finished else 0.05)
                value = call(*args, **kwargs)
                if reply is not None:
                    reply[0].append(value)
                    reply[1].set()
        except queue.Empty:
            pass
        if finished:
            return
        if time.monotonic() > deadline:
            raise TimeoutError("stand-in nuke: main loop timed out")


class Menu:
    def __init__(self, name: str) -> None:
        self._name, self.items = name, {}

    def name(self) -> str:
        return self._name

    def addMenu(self, name: str, icon: str | None = None) -> Menu:
        return self.items.setdefault(name, Menu(name))

    def addCommand(self, name: str, command: str = "", shortcut: str = "", icon: str = "") -> None:
        self.items[name] = command

    def findItem(self, name: str) -> Any:
        return self.items.get(name)


def menu(name: str) -> Menu:
    return _menus.setdefault(name, Menu(name))


# -- start-up, scripts ------------------------------------------------------------------------------
def pluginPath() -> list[str]:
    return list(_plugin_path)


def pluginAddPath(path: str, addToSysPath: bool = True) -> None:
    """Prepend ``path``; during start-up its init.py runs at once (as Nuke documents)."""
    path = os.path.abspath(path)
    if path in _plugin_path:
        _plugin_path.remove(path)
    _plugin_path.insert(0, path)
    if addToSysPath and path not in sys.path:
        sys.path.insert(0, path)
    _run_startup_file(path, "init.py")


def _run_startup_file(folder: str, name: str) -> None:
    file = Path(folder) / name
    if file.is_file():
        runpy.run_path(str(file), run_name="__nuke_startup__")


def standin_reset(gui: bool) -> None:
    """Forget every node, callback, menu and message: a fresh session, in GUI or batch mode."""
    env.clear()
    env.update({"gui": gui, "NukeVersionMajor": 16, "NukeVersionMinor": 0, "NukeVersionString": "16.0v0 stand-in"})
    _callbacks.clear()
    _menus.clear()
    _plugin_path.clear()
    standin_messages.clear()
    standin_saved.clear()
    ProgressTask.standin_tasks.clear()
    ProgressTask.standin_cancel_when = None
    _context[:] = [Group("Root", None)]
    _context[0]._name = "root"
    _this.clear()


def standin_start() -> None:
    """Nuke's start-up: ~/.nuke and $NUKE_PATH on the plug-in path, their init.py, then (GUI) menu.py."""
    folders = [str(Path.home() / ".nuke")] + [p for p in os.environ.get("NUKE_PATH", "").split(os.pathsep) if p]
    _plugin_path[:] = [os.path.abspath(p) for p in folders]
    for folder in list(reversed(_plugin_path)):
        if folder not in sys.path:
            sys.path.insert(0, folder)
        _run_startup_file(folder, "init.py")
    if env.get("gui"):
        for folder in list(reversed(_plugin_path)):
            _run_startup_file(folder, "menu.py")


def scriptOpen(path: str) -> None:
    """Stand-in: runs a *Python* file that builds the graph (the stand-in cannot read .nk scripts)."""
    runpy.run_path(path, run_name="__nuke_script__")


def scriptSave(path: str = "") -> bool:
    standin_saved.append(path)
    return True


def _main(argv: list[str]) -> int:
    """``python standin_nuke.py -t SCRIPT.py [ARGS]``: batch start-up, then the script, like ``nuke -t``."""
    if len(argv) < 2 or argv[0] != "-t":
        sys.stderr.write("usage: standin_nuke.py -t SCRIPT.py [ARGS]\n")
        return 2
    sys.modules["nuke"] = sys.modules[__name__]
    standin_reset(gui=False)
    standin_start()
    sys.argv = argv[1:]
    runpy.run_path(argv[1], run_name="__main__")
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
