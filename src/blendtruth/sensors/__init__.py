"""Depth-sensor simulation on top of the exact passes (pure numpy): presets in ``models``,
the simulation in ``simulate``. Never changes the exact ground truth."""
