"""Keeping exporters' chatter out of the command's output: failures are reported with their reason."""

from __future__ import annotations

import contextlib
import io
import logging
from collections.abc import Iterator


@contextlib.contextmanager
def quiet(*loggers: str) -> Iterator[io.StringIO]:
    """Collect what a step prints (Python-level stdout and stderr, and the named loggers) into a buffer.

    torch gives its loggers their own stderr handlers, so those are swapped out, not just bypassed.
    """
    text = io.StringIO()
    ours = logging.StreamHandler(text)
    saved = {}
    for name in loggers:
        logger = logging.getLogger(name)
        saved[name] = (logger.handlers[:], logger.propagate)
        logger.handlers = [ours]
        logger.propagate = False
    try:
        with contextlib.redirect_stdout(text), contextlib.redirect_stderr(text):
            yield text
    finally:
        for name, (handlers, propagate) in saved.items():
            logger = logging.getLogger(name)
            logger.handlers = handlers
            logger.propagate = propagate
