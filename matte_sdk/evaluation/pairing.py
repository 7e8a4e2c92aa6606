"""Which files belong together: predictions, ground truths, trimaps and plates named by the command line.

Each argument is a folder, a glob (``out/*.exr``), a frame pattern (``out/shot.####.exr``,
``out/shot.%04d.exr``) or a single file:

- Folders and globs pair files by name without the extension (``out/GT01.exr`` with ``alpha/GT01.png``); as
  soon as one argument is a frame pattern, files pair by frame number (for folders, globs and single files:
  the last number in the name).
- A single ground truth, trimap or plate is a still that serves every image.
- When every argument is a single file, they are one image, whatever their names. When every prediction
  is a single file, the images are those files; counterparts given as folders, globs or patterns are looked
  up for them by name (or frame), and may hold other images too.
- Otherwise every image needs all its counterparts; missing ones are named in one error.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from pathlib import Path

import OpenImageIO as oiio

from .. import sequences
from ..errors import InputError

GLOB_CHARS = set("*?[")
MAX_NAMED = 5  # missing counterparts named in one error line


@dataclass(frozen=True)
class Source:
    """The images one command-line argument names, with their frame numbers when it is a frame pattern."""

    arg: str
    paths: tuple[Path, ...]
    frames: dict[Path, int] | None = None
    single: bool = False  # the argument is one file

    @property
    def label(self) -> str:
        """A short name: the folder's name, or the name of the folder a pattern or file is in."""
        path = Path(self.arg)
        return path.name if path.is_dir() else path.parent.name or self.arg

    def keyed(self, by_frame: bool) -> dict[str | int, Path]:
        """Files by matching key (frame number, or name without extension); a key used twice is an error."""
        keyed: dict[str | int, Path] = {}
        for path in self.paths:
            key = self._frame(path) if by_frame else path.stem
            if key in keyed:
                raise InputError(f"{self.arg}: {keyed[key].name} and {path.name} are both image {key}")
            keyed[key] = path
        return keyed

    def _frame(self, path: Path) -> int:
        if self.frames is not None:
            return self.frames[path]
        numbers = re.findall(r"\d+", path.stem)
        if not numbers:
            raise InputError(f"{path}: no frame number in the name to pair it with a sequence")
        return int(numbers[-1])


@dataclass
class Entry:
    """One image to score: its name in tables and reports, and its file for each role (``--pred``, ``--gt``…)."""

    name: str
    files: dict[str, Path]


def find_images(arg: str) -> Source:
    """The images of a folder, a glob, a frame pattern or a single file; InputError if there are none."""
    path = Path(arg)
    if path.is_dir():
        paths = [p for p in path.iterdir() if _is_image(p)]
        if not paths:
            raise InputError(f"{arg}: folder has no images")
        return Source(arg, tuple(sorted(paths)))
    if path.is_file():
        if path.suffix.lower().lstrip(".") not in _extensions():
            raise InputError(f"{arg}: not an image file ('{path.suffix}' is not a format OpenImageIO reads)")
        return Source(arg, (path,), single=True)
    if not path.parent.is_dir():
        raise InputError(f"{arg}: folder {path.parent} does not exist")
    if sequences.is_pattern(arg):
        frames = {Path(sequences.frame_path(arg, frame)): frame for frame in sequences.discover(arg)}
        if not frames:
            raise InputError(f"{arg}: no files match this frame pattern")
        return Source(arg, tuple(frames), frames)
    if GLOB_CHARS & set(path.name):
        paths = [p for p in path.parent.glob(path.name) if _is_image(p)]
        if not paths:
            raise InputError(f"{arg}: no images match")
        return Source(arg, tuple(sorted(paths)))
    raise InputError(f"{arg}: no such file or folder (or use a pattern: name.####.exr, name.%04d.exr, *.png)")


def prediction_roles(count: int) -> list[str]:
    """How the predictions are named in messages and in :attr:`Entry.files`: ``--pred``, or ``--pred #k``."""
    return ["--pred"] if count == 1 else [f"--pred #{k + 1}" for k in range(count)]


def pair(predictions: dict[str, Source], counterparts: dict[str, Source]) -> list[Entry]:
    """The images to score, in name or frame order; InputError naming any missing counterparts.

    ``predictions`` by :func:`prediction_roles`, ``counterparts`` by role (``--gt``, ``--trimap``, ``--plate``).
    An image's name is that of its file of the first counterpart role (its ground truth) or, where that is a
    still serving several images, of its first file that is not a still.
    """
    naming = next(iter(counterparts))  # --gt names images, unless it is a still serving several
    if all(source.single for source in [*counterparts.values(), *predictions.values()]):
        one = {role: source.paths[0] for role, source in {**counterparts, **predictions}.items()}
        return [Entry(one[naming].name, one)]  # one image, whatever the files are called
    stills = {role: source.paths[0] for role, source in counterparts.items() if source.single}
    sources = {**{role: s for role, s in counterparts.items() if not s.single}, **predictions}
    by_frame = any(s.frames is not None for s in sources.values())
    keyed = {role: source.keyed(by_frame) for role, source in sources.items()}
    if all(source.single for source in predictions.values()):
        wanted = set().union(*(keyed[role] for role in predictions))
    else:
        wanted = set().union(*keyed.values())
    problems = []
    for role, files in keyed.items():
        missing = sorted(wanted - files.keys(), key=_natural)
        if missing:
            what = "frames " if by_frame else ""
            problems.append(f"{role} {sources[role].arg} has no {what}{sequences.listing(missing, MAX_NAMED)}")
    if problems:
        raise InputError("missing counterparts: " + "; ".join(problems))
    entries = []
    for key in sorted(wanted, key=_natural):
        paired = {role: files[key] for role, files in keyed.items()}
        named = paired.get(naming) or next(iter(paired.values()))
        entries.append(Entry(named.name, {**paired, **stills}))
    return entries


def _is_image(path: Path) -> bool:
    return path.is_file() and not path.name.startswith(".") and path.suffix.lower().lstrip(".") in _extensions()


@functools.cache
def _extensions() -> frozenset[str]:
    """Every file extension OpenImageIO can read here."""
    listed = oiio.get_string_attribute("extension_list")  # "openexr:exr,sxr;png:png;..."
    return frozenset(ext for entry in listed.split(";") for ext in entry.partition(":")[2].split(","))


def _natural(key: str | int) -> tuple:
    """Order names with numbers numerically (shot2 before shot10)."""
    if isinstance(key, int):
        return (key,)
    return tuple(int(p) if p.isdigit() else p for p in re.split(r"(\d+)", key))
