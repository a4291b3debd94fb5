"""Shared fixtures: where the shared test meshes are; and a clean end for runs that loaded bpy."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
MESHES = SHARED / "meshes"


@pytest.fixture(scope="session")
def meshes() -> Path:
    """``../shared/meshes`` beside the checkout; tests that need it skip without it."""
    if not MESHES.is_dir():
        pytest.skip(f"shared test meshes not found at {MESHES}")
    return MESHES


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config) -> None:
    """End a run that imported bpy without Blender's C++ teardown: its static destructors
    can deadlock at interpreter exit (measured with bpy 4.5: GlobalState's destructor waits
    on the condition variable of its own delayed-close thread), leaving a finished run
    hanging. The report is already printed; the exit status is pytest's own."""
    if "bpy" in sys.modules:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(int(getattr(config, "_blendtruth_status", 0)))


def pytest_sessionfinish(session, exitstatus) -> None:
    session.config._blendtruth_status = int(exitstatus)
