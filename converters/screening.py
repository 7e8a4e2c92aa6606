"""Screening a zip checkpoint before PyTorch reads it: damaged members, and members that would run code.

``torch.export.load`` (torch 2.13, ``torch/export/pt2_archive/_package.py`` and
``torch/_export/serde/serialize.py``) runs code from an archive in these places, all refused here unless
the caller trusts the file:

- ``data/sample_inputs/*.pt`` and legacy whole-dict members (``data/weights/<model>.pt``,
  ``data/constants/<model>.pt``, pre-2.7 ``serialized_*.pt``) go through ``torch.load(weights_only=True)``
  and, if that fails, ``torch.load(weights_only=False)``: each is test-loaded with ``weights_only=True``;
- weights and tensor constants marked ``use_pickle`` in the payload configs are unpickled with
  ``weights_only=False``; ``custom_obj_*`` / ``opaque_obj_*`` constants with TorchScript's or Python's
  pickle;
- ``data/aotinductor/`` holds compiled code that is loaded as a shared library;
- symbolic shape expressions (``expr_str`` in ``models/*.json``) are parsed with ``sympy.sympify``,
  which evaluates them as Python: each must use only sympy's own classes, symbols, numbers and operators.

TorchScript archives and ``torch.save`` files are read by unpicklers that build only tensors, TorchScript
classes and plain containers (``torch.jit.load``, ``torch.load(weights_only=True)``); for them only the
archive's integrity is checked here.
"""

from __future__ import annotations

import io
import json
import re
import zipfile
import zlib
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .errors import LoadError, reason

#: Pre-2.7 torch.export members that ``torch.export.load`` reads with the weights_only=False fallback.
LEGACY_PICKLES = ("serialized_state_dict.pt", "serialized_constants.pt", "serialized_example_inputs.pt")
_TOKEN = re.compile(
    r"\s*(?:(?P<name>[A-Za-z_]\w*)|(?P<number>\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)"
    r"|(?P<text>'[A-Za-z]+\d+'|'[-+]?\d*\.?\d+(?:[eE][-+]?\d+)?')"  # a symbol's name, a number
    r"|(?P<op>\*\*|//|[<>=!]=|[-+*/%(),<>=&|~]))",
    re.ASCII,  # Python folds some non-ASCII letters into ASCII names (NFKC): "ｅｘｅｃ" is exec
)
_SYMBOL_NAME = re.compile(r"[A-Za-z]+\d+", re.ASCII)
#: Keyword arguments sympy's ``srepr`` writes besides assumptions (``Float('1.5', precision=53)``).
_KEYWORDS = ("precision",)
_GLOBAL = re.compile(r"GLOBAL [\w.]+")


def screen(path: Path, data: bytes, kind: str, *, trust_pickle: bool) -> None:
    """Refuse ``data`` (the bytes of ``path``, a checkpoint of format ``kind``) if it is damaged, or,
    unless ``trust_pickle``, if loading it as ``kind`` would run code from the file."""
    if not zipfile.is_zipfile(io.BytesIO(data)):
        return  # a legacy torch.save pickle stream: no checksums to verify; read with weights_only=True
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        check_integrity(path, archive)
        if kind != "torch.export" or trust_pickle:
            return
        for member, why in export_risks(archive):
            raise LoadError(
                f"{path}: member {member} {why}; loading it would run code from the file. Pass "
                f"--trust-pickle only if you trust its source"
            )


def check_integrity(path: Path, archive: zipfile.ZipFile) -> None:
    """Refuse duplicate member names (zip readers disagree on which one counts) and members whose
    CRC-32 does not match their content."""
    counts = Counter(archive.namelist())
    for name, count in counts.items():
        if count > 1:
            raise LoadError(f"{path}: damaged archive: member {name} appears {count} times")
    try:
        bad = archive.testzip()
    except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError) as exc:
        raise LoadError(f"{path}: damaged archive: {reason(exc)}") from None
    if bad is not None:
        raise LoadError(f"{path}: damaged archive: member {bad} fails its CRC-32 check")


def export_risks(archive: zipfile.ZipFile) -> Iterator[tuple[str, str]]:
    """(member, why) for each member of a torch.export archive that ``torch.export.load`` would execute
    or unpickle with more than ``weights_only=True``."""
    from torch.export.pt2_archive import constants as pt2

    for name in archive.namelist():
        tail = name.split("/", 1)[1] if "/" in name else name
        if tail.startswith(pt2.AOTINDUCTOR_DIR):
            yield name, "is AOTInductor compiled code, which torch.export.load loads as a shared library"
        elif (
            tail.startswith(pt2.SAMPLE_INPUTS_DIR)
            or (tail.startswith((pt2.WEIGHTS_DIR, pt2.CONSTANTS_DIR)) and tail.endswith(".pt"))
            or tail in LEGACY_PICKLES
        ):
            problem = _weights_only_problem(archive.read(name))
            if problem:
                why = f"is a pickle that weights_only=True refuses ({problem}), so torch.export.load would "
                yield name, why + "unpickle it with weights_only=False"
        elif tail.endswith(".json"):
            config = _json(archive, name)
            if tail.startswith((pt2.WEIGHTS_DIR, pt2.CONSTANTS_DIR)):
                yield from _pickled_payloads(name, config, pt2)
            else:
                yield from _unsafe_expressions(name, config)


def _json(archive: zipfile.ZipFile, name: str) -> Any:
    try:
        return json.loads(archive.read(name))
    except (ValueError, UnicodeDecodeError):
        return None  # torch refuses it before anything runs


def _pickled_payloads(name: str, config: Any, pt2: Any) -> Iterator[tuple[str, str]]:
    """Entries of a weights or constants payload config that torch unpickles beyond weights_only."""
    entries = config.get("config") if isinstance(config, dict) else None
    folder = name.rsplit("/", 1)[0]
    for fqn, meta in (entries or {}).items():
        if not isinstance(meta, dict):
            continue
        stored = f"{folder}/{meta.get('path_name')}"
        if meta.get("use_pickle"):
            why = f"holds {fqn!r} as a pickle (use_pickle in {name}), which torch.export.load unpickles "
            yield stored, why + "with weights_only=False"
        elif str(meta.get("path_name", "")).startswith(
            (pt2.CUSTOM_OBJ_FILENAME_PREFIX, pt2.OPAQUE_OBJ_FILENAME_PREFIX)
        ):
            yield stored, f"holds the object {fqn!r}, which torch.export.load unpickles without weights_only"


def _unsafe_expressions(name: str, graph: Any) -> Iterator[tuple[str, str]]:
    """Symbolic shape expressions that are more than sympy classes, symbols, numbers and operators."""
    for text in _values(graph, "expr_str"):
        if not isinstance(text, str) or not plain_expression(text):
            yield name, f"has the shape expression {str(text)[:80]!r}, which torch.export.load evaluates as Python"


def _values(node: Any, key: str) -> Iterator[Any]:
    """Every value stored under ``key`` anywhere in a JSON document."""
    stack = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            if key in item:
                yield item[key]
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)


def plain_expression(text: str) -> bool:
    """Whether ``text`` is built only from sympy/torch sympy classes, symbol names, numbers, quoted symbol
    names or numbers, and operators: no attribute access, no builtins, nothing sympify's ``eval`` could
    misuse."""
    position = 0
    text = text.rstrip()
    while position < len(text):
        token = _TOKEN.match(text, position)
        if token is None:
            return False
        name = token["name"]
        if name is not None and not _harmless_name(name):
            return False
        position = token.end()
    return True


def _harmless_name(name: str) -> bool:
    import sympy
    import torch.utils._sympy.functions as torch_sympy
    from sympy.core.assumptions import _assume_defined

    if name in ("True", "False", *_KEYWORDS) or name in _assume_defined or _SYMBOL_NAME.fullmatch(name):
        return True
    if name.startswith("_"):
        return False
    value = getattr(sympy, name, getattr(torch_sympy, name, None))
    return isinstance(value, sympy.Basic) or (isinstance(value, type) and issubclass(value, sympy.Basic))


def _weights_only_problem(data: bytes) -> str | None:
    """None if ``torch.load(weights_only=True)`` reads ``data``; otherwise what stopped it."""
    import pickle

    import torch

    try:
        torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        return blocked_global(exc)
    except Exception as exc:
        return reason(exc)
    return None


def blocked_global(exc: Exception) -> str:
    """The global that weights_only refused, from torch's message, e.g. 'GLOBAL mynet.Net'."""
    found = _GLOBAL.search(str(exc))
    return found[0] if found else "not plain tensors"
