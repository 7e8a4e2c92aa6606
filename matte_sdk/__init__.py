"""matte-sdk: alpha mattes and straight foregrounds from scene-linear plates."""

from __future__ import annotations

from .contract import CONTRACT_KEY, CONTRACT_VERSION, ModelSpec
from .errors import DeviceError, InputError, MatteError, ModelContractError
from .foreground import estimate_foreground
from .hookspecs import hookimpl
from .imageio import Image, read_image, write_image
from .matter import Matte, Matter

__version__ = "0.1.0"

__all__ = [
    "CONTRACT_KEY",
    "CONTRACT_VERSION",
    "ModelSpec",
    "DeviceError",
    "InputError",
    "MatteError",
    "ModelContractError",
    "Image",
    "Matte",
    "Matter",
    "estimate_foreground",
    "hookimpl",
    "read_image",
    "write_image",
    "__version__",
]
