"""The farm: frame-parallel renders on Ray (:func:`run`) and Open Job Description job bundles for Deadline
and other OpenJD schedulers (:func:`bundle`), on top of :mod:`matte_sdk.jobs`.

Needs the ``farm`` extra (``pip install 'matte-sdk[farm]'``); ``import matte_sdk`` never imports it.
Both check the job as ``matte`` does (:func:`preflight`) before anything is scheduled.
"""

from __future__ import annotations

from .openjd import bundle
from .preflight import preflight
from .ray_runner import FarmResult, WorkerInfo, run

__all__ = ["FarmResult", "WorkerInfo", "bundle", "preflight", "run"]
