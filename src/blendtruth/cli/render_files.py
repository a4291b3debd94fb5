"""The work of ``blendtruth render``, run in a child process under the limits (see child.py)."""

from __future__ import annotations

import shutil
from pathlib import Path

from blendtruth.multiview import ViewPlan
from blendtruth.scene import SceneSpec
from blendtruth.settings import RenderSettings


def render_files(
    spec: SceneSpec,
    plan: ViewPlan | None,
    settings: RenderSettings,
    out: Path,
    normals_source: str,
) -> tuple[str, list[Path]]:
    """Render into ``out``: the tutorial's single view when ``plan`` is None, else every
    planned view. Returns the summary line and the files written."""
    from blendtruth.writers.output import write_single_view

    if plan is None:
        from blendtruth.api import backend_for, render_view

        view = render_view(settings=settings, scene=spec)
        written = write_single_view(out, view, normals_source, backend_for(spec).info.table)
        summary = (
            f"rendered 1 view with Blender {view.meta['blender_version']} on "
            f"{view.meta['device']}; {int(view.mask.sum())} pixels hit a surface"
        )
    else:
        from blendtruth.multiview import render_model
        from blendtruth.writers.swap import remove_stale_staging, replace_render, staging_dir

        remove_stale_staging(out)
        staging = staging_dir(out)
        shutil.rmtree(staging, ignore_errors=True)
        from blendtruth.progress import view_progress

        try:
            # A live bar when the child's stderr is the user's terminal.
            with view_progress(plan.views, plan.sampler != "file") as on_view:
                render_model(spec, plan, settings, staging, on_view=on_view)
            written = replace_render(staging, out)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        summary = f"rendered {len(list((Path(out) / 'views').glob('*.npz')))} views"
    return summary, written
