"""The panels ``--help`` groups the options of ``render``, ``dataset`` and ``scene`` into
(rich-click option groups). A command's options not named here land in its "Options"
panel, so a new option is never hidden; a panel naming an option a command lacks is skipped
for that command."""

from __future__ import annotations

PANELS: list[tuple[str, list[str]]] = [
    ("Output", ["--out", "--export", "--previews", "--points", "--compress", "--normals"]),
    ("Image", ["--width", "--height", "--samples", "--engine", "--device", "--denoise",
               "--no-rgb", "--threads", "--seed"]),
    ("Cameras", ["--views", "--sampler", "--rig", "--cameras", "--camera", "--fov", "--K",
                 "--radius", "--fill", "--elevation", "--ortho-scale", "--fisheye-fov",
                 "--pairs"]),
    ("Model and light", ["--normalize", "--material", "--light", "--hdri", "--hdri-strength",
                         "--hdri-rotation", "--background", "--scene-file"]),
    ("Ground truth", ["--truth", "--passes", "--semantic", "--semantic-map",
                      "--alpha-threshold", "--amodal"]),
    ("Multi-object scenes", ["--scenes", "--objects", "--ground", "--ground-size",
                             "--ground-in-truth", "--scale", "--upright", "--collision"]),
    ("Running", ["--workers", "--shard", "--retries", "--timeout", "--max-memory",
                 "--executor", "--address", "--recycle-after", "--no-progress"]),
]  # fmt: skip

GROUPED_COMMANDS = ("render", "dataset", "scene")


def install(prog: str = "blendtruth") -> None:
    """Register the panels with rich-click for ``prog``'s grouped commands."""
    import rich_click

    groups = [{"name": name, "options": options} for name, options in PANELS]
    for command in GROUPED_COMMANDS:
        rich_click.rich_click.OPTION_GROUPS[f"{prog} {command}"] = groups
