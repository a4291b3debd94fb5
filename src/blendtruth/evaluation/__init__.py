"""Scoring predictions against blendtruth's ground truth (``blendtruth eval``).

Pure numpy (plus scipy's k-d tree for surfaces): :mod:`.metrics` (depth, alignment,
normals, masks), :mod:`.surface` (Chamfer distance, F-score, normal consistency),
:mod:`.io` (ground-truth folders and prediction files), :mod:`.report` (table, JSON, CSV)
and :mod:`.run` (:func:`blendtruth.evaluate`). Formulas: docs/eval.md.
"""
