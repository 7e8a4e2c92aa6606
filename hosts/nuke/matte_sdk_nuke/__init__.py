"""Matte SDK for Nuke 15 and 16: the MatteSDK node, a thin shell over ``matte-sdk worker``.

Standard library, ``nuke`` and the vendored ``client.py`` only (valid Python 3.10). Modules:
``node`` builds the Group, ``pull`` renders its inputs and asks the worker for the stale frames,
``cache`` decides which frames are stale, ``gui`` runs a pull off the main thread, ``farm`` pulls
frames before a batch render, ``precompute`` is the ``nuke -t`` script.
"""
