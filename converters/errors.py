"""Errors ``matte-sdk convert`` reports: one line naming the file, the step and the reason."""

from __future__ import annotations

import re

from matte_sdk.errors import MatteError

_ANSI = re.compile(r"\x1b\[[0-9;]*m")


class ConversionError(MatteError):
    """Base class for conversion failures."""


class LoadError(ConversionError):
    """A checkpoint can't be read, or doesn't match its architecture."""


class ExportError(ConversionError):
    """Every exporter failed, or the module's outputs don't fit the description."""


class ParityError(ConversionError):
    """The converted model's outputs differ from PyTorch's beyond the tolerance."""


def reason(exc: BaseException) -> str:
    """``Type: first line`` of the error and of its root cause (exporters wrap the real reason), one line."""

    def first(e: BaseException) -> str:
        lines = [ln.strip() for ln in _ANSI.sub("", str(e)).splitlines() if ln.strip()]
        return f"{type(e).__name__}: {lines[0][:300]}" if lines else type(e).__name__

    root = exc
    while root.__cause__ is not None:
        root = root.__cause__
    return first(exc) if root is exc else f"{first(exc)} (cause: {first(root)})"
