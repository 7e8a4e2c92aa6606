"""Exceptions raised by matte-sdk.

Every error a user can cause derives from :class:`MatteError`; its ``str()`` is one line that names the
file (or model) and the problem, which is what the command line prints before exiting non-zero.
"""

from __future__ import annotations


class MatteError(Exception):
    """Base class for every error matte-sdk reports to a user."""


class InputError(MatteError):
    """A plate, trimap, background or output path is missing, corrupt or inconsistent."""


class ModelContractError(MatteError):
    """A model file lacks, or has an invalid, ``matte_sdk`` description."""


class DeviceError(MatteError):
    """The requested device or execution provider is not really usable."""
