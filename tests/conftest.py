"""Shared fixtures: where the shared test meshes are."""

from __future__ import annotations

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
