"""Measuring matte quality: everything ``matte-sdk eval``, the quality benchmark and training's yardsticks use.

- :mod:`.metrics`: SAD, MSE, Gradient and Connectivity of arrays, as the Deep Image Matting code defines them.
- :mod:`.pairing`: which prediction, ground-truth, trimap and plate files belong together.
- :mod:`.scoring`: reading those files as the reference does, and scoring each prediction source over them.
- :mod:`.report`: tables, the JSON document, and pictures and pages (HTML, Markdown, PNG/SVG/PDF).
- :mod:`.benchmark`: timed matting methods over an alphamatting.com-style dataset folder.

Imports run one way: metrics and pairing need nothing here; scoring needs both; report needs scoring;
benchmark needs metrics and scoring. SciPy (Gradient, Connectivity) and matplotlib (pictures) are imported
only when used: ``pip install 'matte-sdk[eval]'``.
"""
