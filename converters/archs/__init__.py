"""Network definitions trained by this project."""

from .mattenet import MatteNet

__all__ = ["MatteNet"]
