"""Loading PyTorch checkpoints safely, recognising the format by content rather than by extension.

Accepted: torch.export archives (``.pt2``), TorchScript archives and ``torch.save`` files holding a
state_dict (given ``--arch module:Class``). The file is read once; its bytes are screened
(:mod:`.screening`: CRCs, and members torch would unpickle beyond ``weights_only=True``) and those same
bytes go to torch. Every ``torch.load`` uses ``weights_only=True``; anything that needs more (a module saved
with ``torch.save(model)``, a pickle inside a ``.pt2``) loads only with ``trust_pickle=True``, because
unpickling it runs code from the file.
"""

from __future__ import annotations

import hashlib
import importlib
import io
import json
import pickle
import re
import warnings
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import LoadError, reason
from .quiet import quiet
from .screening import blocked_global, screen

#: Where trainers commonly nest the weights inside a checkpoint dict, tried in this order.
STATE_KEYS = ("state_dict", "model_state_dict", "model", "net", "params")
#: Key prefixes added by DataParallel/DistributedDataParallel, torch.compile and AveragedModel (EMA).
WRAPPER_PREFIXES = ("module.", "_orig_mod.")
#: Bookkeeping entries that are not weights (torch.optim.swa_utils.AveragedModel's counter).
NOT_WEIGHTS = ("n_averaged",)
_LIST_LIMIT = 20


@dataclass
class LoadedModel:
    """A PyTorch module ready to export, and where it came from."""

    module: Any
    path: Path
    format: str
    sha256: str
    provenance: dict[str, Any] = field(default_factory=dict)


def read(path: Path) -> bytes:
    """The checkpoint's bytes; :class:`LoadError` if it can't be read."""
    if not path.is_file():
        raise LoadError(f"{path}: no such file")
    try:
        return path.read_bytes()
    except OSError as exc:
        raise LoadError(f"{path}: cannot read: {exc.strerror}") from None


def sniff(path: Path, data: bytes | None = None) -> str:
    """The checkpoint format from the file's content (``data``, else read from ``path``):
    ``torch.export``, ``torchscript`` or ``torch.save``.

    Raises :class:`LoadError` for anything else, naming what the file looks like when it can tell.
    """
    if data is None:
        data = read(path)
    head = data[:16]
    if zipfile.is_zipfile(io.BytesIO(data)):
        try:
            names = zipfile.ZipFile(io.BytesIO(data)).namelist()
        except (zipfile.BadZipFile, OSError) as exc:
            raise LoadError(f"{path}: damaged archive ({exc})") from None
        tails = {n.split("/", 1)[1] if "/" in n else n for n in names}
        if "archive_format" in tails:
            return "torch.export"
        if "constants.pkl" in tails and any(t.startswith("code/") for t in tails):
            return "torchscript"
        if "data.pkl" in tails:
            return "torch.save"
        raise LoadError(f"{path}: a zip archive, but not a PyTorch checkpoint (no data.pkl, code/ or archive_format)")
    if head[:1] == b"\x80" and len(head) > 1 and 2 <= head[1] <= 5:
        return "torch.save"  # legacy (pre-1.6) torch.save: a bare pickle stream
    if len(head) > 8 and head[8:9] == b"{":
        raise LoadError(
            f"{path}: looks like a safetensors file; load it and save its state_dict with "
            f"torch.save(state_dict, 'model.pt'), then convert that with --arch"
        )
    if path.suffix.lower() == ".onnx":
        raise LoadError(f"{path}: this is already an ONNX model, not a PyTorch checkpoint")
    raise LoadError(
        f"{path}: unknown file format (expected a torch.export .pt2 archive, a TorchScript "
        f"archive or a torch.save checkpoint)"
    )


def load(
    path: str | Path,
    *,
    arch: str | None = None,
    arch_kwargs: Mapping[str, Any] | None = None,
    state_key: str | None = None,
    trust_pickle: bool = False,
) -> LoadedModel:
    """Load ``path`` into an eval-mode module, checking it against ``arch`` where one is needed."""
    import torch

    path = Path(path)
    data = read(path)
    kind = sniff(path, data)
    if kind != "torch.save" and arch:
        raise LoadError(f"{path}: a {kind} archive carries its own architecture; --arch is only for state_dicts")
    screen(path, data, kind, trust_pickle=trust_pickle)
    digest = hashlib.sha256(data).hexdigest()
    if kind == "torch.export":
        return LoadedModel(_load_program(path, data).module(), path, kind, digest)
    if kind == "torchscript":
        try:
            with warnings.catch_warnings():  # torch ≥ 2.9 deprecates TorchScript; reading archives is our job
                warnings.simplefilter("ignore", DeprecationWarning)
                module = torch.jit.load(io.BytesIO(data), map_location="cpu")
        except Exception as exc:
            raise LoadError(f"{path}: torch.jit.load failed: {reason(exc)}") from None
        return LoadedModel(module.float().eval(), path, kind, digest)
    obj = _torch_load(path, data, trust_pickle)
    if isinstance(obj, torch.nn.Module):
        if arch:
            raise LoadError(f"{path}: holds a whole pickled module; --arch is only for state_dicts")
        return LoadedModel(obj.float().eval(), path, "pickled module", digest)
    state, where = find_state_dict(obj, path, state_key)
    if not arch:
        raise LoadError(
            f"{path}: a state_dict ({len(state)} tensors) holds weights only; pass "
            f"--arch module:Class (and --arch-kwargs JSON) to say which network they belong to"
        )
    module = build_arch(arch, arch_kwargs or {})
    load_weights(module, state, path, arch)
    provenance = {"arch": arch, "arch_kwargs": dict(arch_kwargs or {})}
    if where:
        provenance["state_key"] = where
    return LoadedModel(module.float().eval(), path, "state_dict", digest, provenance)


_UNREGISTERED = re.compile(r"Deserializing ([\w.]+)\.\w+ in pytree is not registered")


def _load_program(path: Path, data: bytes) -> Any:
    """torch.export.load of the screened bytes, importing the installed modules whose output types the
    archive names.

    An archive records output containers (e.g. transformers' ``ImageMattingOutput``) by qualified name;
    their classes register with torch's pytree when their module is imported. Only installed modules
    are imported.
    """
    import torch

    for _ in range(8):
        with quiet("torch.export") as log:
            try:
                return torch.export.load(io.BytesIO(data))
            except Exception as exc:
                error = exc
        match = _UNREGISTERED.search(log.getvalue() + str(error))
        if not match:
            raise LoadError(f"{path}: torch.export.load failed: {reason(error)}")
        try:
            importlib.import_module(match[1])
        except ImportError as err:
            raise LoadError(
                f"{path}: its outputs use types from {match[1]}, which cannot be imported "
                f"({err}); install the package that defines them"
            ) from None
    raise LoadError(f"{path}: torch.export.load failed: too many unregistered output types")


def _torch_load(path: Path, data: bytes, trust_pickle: bool) -> Any:
    import torch

    try:
        return torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        if not trust_pickle:
            raise LoadError(
                f"{path}: pickles Python objects ({blocked_global(exc)}); loading it runs code "
                f"from the file. Pass --trust-pickle only if you trust its source, or save "
                f"model.state_dict() and convert that with --arch"
            ) from None
    except Exception as exc:
        raise LoadError(f"{path}: torch.load failed: {reason(exc)}") from None
    try:
        return torch.load(io.BytesIO(data), map_location="cpu", weights_only=False)
    except Exception as exc:
        raise LoadError(f"{path}: torch.load (--trust-pickle) failed: {reason(exc)}") from None


def _is_state(obj: Any) -> bool:
    import torch

    return (
        isinstance(obj, Mapping)
        and bool(obj)
        and all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in obj.items())
    )


def find_state_dict(obj: Any, path: Path, state_key: str | None = None) -> tuple[dict[str, Any], str | None]:
    """The tensor mapping in a checkpoint: itself, ``obj[state_key]`` (dotted path) or a usual nesting."""
    if state_key:
        node = obj
        for part in state_key.split("."):
            if not isinstance(node, Mapping) or part not in node:
                raise LoadError(f"{path}: --state-key {state_key}: no entry {part!r}")
            node = node[part]
        if not _is_state(node):
            raise LoadError(f"{path}: --state-key {state_key} is not a mapping of names to tensors")
        return _strip_wrappers(dict(node)), state_key
    if _is_state(obj):
        return _strip_wrappers(dict(obj)), None
    if isinstance(obj, Mapping):
        for key in STATE_KEYS:
            if _is_state(obj.get(key)):
                return _strip_wrappers(dict(obj[key])), key
        keys = ", ".join(map(str, list(obj)[:_LIST_LIMIT]))
        raise LoadError(f"{path}: no state_dict found (top-level keys: {keys}); name the entry with --state-key")
    raise LoadError(f"{path}: holds a {type(obj).__name__}, not a state_dict or a module")


def _strip_wrappers(state: dict[str, Any]) -> dict[str, Any]:
    state = {k: v for k, v in state.items() if k not in NOT_WEIGHTS}
    for prefix in WRAPPER_PREFIXES:
        if all(k.startswith(prefix) for k in state):
            state = {k[len(prefix) :]: v for k, v in state.items()}
    return state


def build_arch(arch: str, kwargs: Mapping[str, Any]) -> Any:
    """Instantiate ``module:Class`` with ``kwargs``.

    A Hugging Face ``PreTrainedModel`` class (one with ``config_class``) is built from its config:
    ``kwargs`` are then the config's fields (a ``config.json`` loaded with ``--arch-kwargs @config.json``).
    """
    module_name, _, class_name = arch.partition(":")
    if not module_name or not class_name:
        raise LoadError(f"--arch {arch}: expected module:Class, e.g. mypackage.nets:MatteNet")
    try:
        cls = getattr(importlib.import_module(module_name), class_name)
    except ImportError as exc:
        raise LoadError(f"--arch {arch}: cannot import {module_name} ({exc})") from None
    except AttributeError:
        raise LoadError(f"--arch {arch}: module {module_name} has no {class_name}") from None
    try:
        config_class = getattr(cls, "config_class", None)
        if config_class is not None and hasattr(config_class, "from_dict"):
            return cls(config_class.from_dict(dict(kwargs)))
        return cls(**kwargs)
    except Exception as exc:
        raise LoadError(
            f"--arch {arch}: constructing {class_name}(**{json.dumps(dict(kwargs))}) failed: {reason(exc)}"
        ) from None


def load_weights(module: Any, state: Mapping[str, Any], path: Path, arch: str) -> None:
    """Load ``state`` into ``module``, listing missing, unexpected and mis-shaped keys on any mismatch."""
    own = module.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    shapes = [
        f"{k} (checkpoint {list(state[k].shape)}, model {list(own[k].shape)})"
        for k in own
        if k in state and tuple(state[k].shape) != tuple(own[k].shape)
    ]
    problems = [
        f"{what} ({len(keys)}): {_listing(keys)}"
        for what, keys in (("missing", missing), ("unexpected", unexpected), ("shape mismatch", shapes))
        if keys
    ]
    if problems:
        raise LoadError(f"{path}: keys don't match --arch {arch}: {'; '.join(problems)}")
    module.load_state_dict(state, strict=True)


def _listing(keys: list[str]) -> str:
    shown = ", ".join(keys[:_LIST_LIMIT])
    return shown + (f", … and {len(keys) - _LIST_LIMIT} more" if len(keys) > _LIST_LIMIT else "")
