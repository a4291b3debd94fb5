"""Every default a subcommand's ``--help`` states is the value the command really uses.

Each command is run in-process with no options, its work replaced by a recorder at the
point where the parsed options have become the objects the renderer gets (RenderSettings,
ViewPlan, SceneSpec, DatasetOptions, LayoutOptions, export/show arguments). The defaults
are read from the help text (``[default: X]`` and prose ``(default X; ...)``) and
compared with those objects, so a help text that drifts from the code (e.g. "sphere" shown
while a ground plane switches to "hemisphere") fails. A stated default with no check
here fails too."""

from __future__ import annotations

import re
from pathlib import Path

import click
import pytest

from blendtruth.cli.main import cli, main

MESH = Path(__file__).resolve().parents[1].parent / "shared" / "meshes" / "cow.obj"


def _record(monkeypatch, tmp_path) -> dict:
    """Replace each command's work by a recorder of what it would have been given."""
    got: dict = {}
    import blendtruth.cli.tools as tools
    import blendtruth.dataset.runner as runner
    import blendtruth.runtime.child as child
    import blendtruth.scenes.multiscene as multiscene
    import blendtruth.show.gallery as gallery

    def run_in_child(target, args, label, timeout, max_memory):
        spec, plan, settings, out, normals = args
        got.update(spec=spec, plan=plan, settings=settings, out=out, normals=normals)
        got.update(timeout=timeout, max_memory=max_memory)
        return "recorded", []

    def run_dataset(sources, out, spec, plan, settings, options):
        got.update(spec=spec, plan=plan, settings=settings, out=out, options=options)
        return {"models_done": 0, "models_failed": 0, "skipped_already_done": 0, "views": 0,
                "seconds": 0.0, "failures": []}  # fmt: skip

    def render_scene(models, layout, template, plan, settings, out):
        got.update(spec=template, plan=plan, settings=settings, out=out, layout=layout)
        return []

    def run_exports(formats, path, out=None, show_progress=True, **options):
        got.update(out=out, progress=show_progress, formats=formats, export_path=path, **options)
        return []

    def show(folder, out, views, on_model=None):
        got.update(out=out, views=views)
        return [Path("s/contact_sheet.png"), Path("s/index.html")]

    monkeypatch.setattr(child, "run_in_child", run_in_child)
    monkeypatch.setattr(runner, "run_dataset", run_dataset)
    monkeypatch.setattr(multiscene, "render_scene", render_scene)
    monkeypatch.setattr(tools, "run_exports", run_exports)
    monkeypatch.setattr(gallery, "show", show)
    monkeypatch.chdir(tmp_path)
    return got


def _settings(name):
    return lambda g: getattr(g["settings"], name)


def _plan(name):
    return lambda g: getattr(g["plan"], name)


def _spec(name):
    return lambda g: getattr(g["spec"], name)


# (command or "*" for render/dataset/scene, option) -> the value the command used.
VALUES = {
    ("*", "--out"): lambda g: g["out"],
    ("*", "--width"): _settings("width"),
    ("*", "--height"): _settings("height"),
    ("*", "--samples"): _settings("samples"),
    ("*", "--engine"): _settings("engine"),
    ("*", "--device"): _settings("device"),
    ("*", "--seed"): _settings("seed"),
    ("*", "--threads"): _settings("threads"),
    ("*", "--truth"): _settings("truth"),
    ("*", "--alpha-threshold"): _settings("alpha_threshold"),
    ("*", "--previews"): _settings("previews"),
    ("*", "--points"): _settings("points"),
    ("*", "--passes"): lambda g: (
        "default"
        if g["settings"].passes == ("depth", "distance", "normal", "mask", "instance")
        else g["settings"].passes
    ),
    ("*", "--views"): _plan("views"),
    ("*", "--sampler"): _plan("sampler"),
    ("*", "--fov"): _plan("fov_deg"),
    ("*", "--fill"): _plan("fill"),
    ("*", "--elevation"): _plan("elevation_deg"),
    ("*", "--pairs"): _plan("pairs"),
    ("*", "--camera"): _plan("camera_model"),
    ("*", "--fisheye-fov"): _plan("fisheye_fov"),
    ("*", "--light"): _spec("light"),
    ("*", "--material"): _spec("material"),
    ("*", "--hdri-strength"): _spec("hdri_strength"),
    ("*", "--hdri-rotation"): _spec("hdri_rotation"),
    ("*", "--background"): _spec("background"),
    ("render", "--normalize"): _spec("normalize"),
    ("dataset", "--normalize"): _spec("normalize"),
    ("*", "--semantic"): _spec("semantic"),
    ("render", "--normals"): lambda g: g["normals"],
    ("dataset", "--retries"): lambda g: g["options"].retries,
    ("dataset", "--timeout"): lambda g: g["options"].timeout,
    ("dataset", "--executor"): lambda g: g["options"].executor,
    ("dataset", "--recycle-after"): lambda g: g["options"].recycle_after,
    ("scene", "--objects"): lambda g: g["layout"].objects,
    ("scene", "--ground"): lambda g: g["layout"].ground,
    ("scene", "--ground-in-truth"): lambda g: g["layout"].ground_in_truth,
    ("scene", "--scale"): lambda g: ",".join(str(x) for x in g["layout"].scale_range),
    ("scene", "--collision"): lambda g: g["layout"].collision,
    ("export", "--depth-scale"): lambda g: g["depth_scale"],
    ("export", "--max-points"): lambda g: g["max_points"],
    ("export", "--shard-bytes"): lambda g: g["max_shard_bytes"],
    ("export", "--image-factors"): lambda g: ",".join(str(f) for f in g["image_factors"]),
    ("show", "--views"): lambda g: g["views"],
}

# Defaults stated in words: (the words, a check of what the command used).
PROSE = {
    ("*", "--radius"): ("the model fills --fill", lambda g: g["plan"].radius is None),
    ("*", "--ortho-scale"): (
        "the bounding sphere fills --fill",
        lambda g: g["plan"].ortho_scale is None,
    ),
    ("render", "--timeout"): ("no limit", lambda g: g["timeout"] is None),
    ("render", "--max-memory"): ("80% of RAM", lambda g: g["max_memory"] > 0),
    ("dataset", "--workers"): ("one per GPU", lambda g: g["options"].workers >= 1),
    ("dataset", "--max-memory"): ("80% of RAM / workers", lambda g: g["options"].max_memory),
    ("dataset", "--address"): ("start locally", lambda g: g["options"].address is None),
    ("*", "--ground-size"): (
        "auto",
        lambda g: g.get("layout") is None or g["layout"].ground_size is None,
    ),
    # "sphere; hemisphere in a scene with a ground plane": `scene` has a ground by default.
    ("scene", "--sampler"): (
        "sphere",
        lambda g: g["layout"].ground and g["plan"].sampler == "hemisphere",
    ),
    ("export", "--out"): ("in place", lambda g: g["out"] is None),
    ("show", "--out"): ("FOLDER/show", lambda g: g["out"] is None),
}

# Options used only with --scenes K: `scene` without it never reaches them.
NOT_REACHED = {("scene", "--normalize"),  # refused for scenes: test below
               ("scene", "--workers"), ("scene", "--timeout"), ("dataset", "--objects"),
               ("dataset", "--ground"), ("dataset", "--ground-in-truth"), ("dataset", "--scale"),
               ("dataset", "--collision")}  # fmt: skip


def _stated_defaults(name: str) -> dict[str, str]:
    """{option: the default its help states} of subcommand ``name``."""
    command = cli.commands[name]
    ctx = click.Context(command, info_name=name)
    stated = {}
    for param in command.params:
        if not isinstance(param, click.Option):
            continue
        record = param.get_help_record(ctx)
        if record is None:
            continue
        text = record[1]
        shown = re.search(r"\[default: ([^\]]+)\]", text)
        prose = re.search(r"\(default:? ([^;)]+)", text)
        if shown:
            stated[param.opts[0]] = shown.group(1).strip()
        elif prose:
            stated[param.opts[0]] = prose.group(1).strip()
    return stated


def _as_text(value, option: str, stated: str) -> str:
    if isinstance(value, bool):  # a --x/--no-x flag shows "x" or "no-x"
        name = option.removeprefix("--")
        return name if value else f"no-{name}"
    if isinstance(value, int | float) and re.fullmatch(r"[-\d.e_]+", stated):
        return stated if float(stated) == value else repr(value)  # "0" for 0.0
    return str(value)


ARGS = {
    "render": [str(MESH)],
    "dataset": [str(MESH), "--no-progress"],
    "scene": [str(MESH), "--objects", "1"],
}


@pytest.mark.parametrize("name", ["render", "dataset", "scene", "export", "show"])
def test_help_defaults_are_the_defaults_the_command_uses(name, tmp_path, monkeypatch):
    got = _record(monkeypatch, tmp_path)
    args = ARGS.get(name)
    if args is None:
        folder = tmp_path / "render"
        (folder / "views").mkdir(parents=True)
        (folder / "views" / "0000.npz").write_bytes(b"")
        args = ["colmap", str(folder)] if name == "export" else [str(folder)]
    if name == "scene":  # --objects 1 is given, so check --objects by its stated default
        args = [str(MESH)]
    assert main([name, *args]) == 0
    stated = _stated_defaults(name)
    assert stated, "no defaults found in the help"
    checked = 0
    for option, text in stated.items():
        key = (name, option) if (name, option) in VALUES or (name, option) in PROSE else None
        key = key or ("*", option)
        if (name, option) in NOT_REACHED:
            continue
        if key in VALUES:
            actual = _as_text(VALUES[key](got), option, text)
            assert actual == text, f"{name} {option}: help says {text!r}, the code uses {actual!r}"
        elif key in PROSE:
            words, check = PROSE[key]
            assert text.startswith(words), f"{name} {option}: help says {text!r}"
            assert check(got), f"{name} {option}: the code does not do {words!r}"
        else:
            raise AssertionError(f"{name} {option}: help states default {text!r}; add a check")
        checked += 1
    assert checked >= 2


def test_scene_uses_hemisphere_and_says_so(tmp_path, monkeypatch):
    """The ground-plane case of --sampler: the help's second clause is what `scene` does."""
    got = _record(monkeypatch, tmp_path)
    assert main(["scene", str(MESH)]) == 0
    text = cli.commands["scene"].params
    sampler = next(p for p in text if p.name == "sampler")
    assert "hemisphere in a scene with a ground plane" in sampler.help
    assert got["plan"].sampler == "hemisphere"
    assert main(["scene", str(MESH), "--no-ground"]) == 0
    assert got["plan"].sampler == "sphere"


def test_scene_refuses_normalize_and_passes_semantic(tmp_path, monkeypatch, capsys):
    """Options `scene` used to accept and ignore: --no-normalize is refused in one line,
    --semantic reaches the scene (and `dataset`'s models) instead of being dropped."""
    got = _record(monkeypatch, tmp_path)
    assert main(["scene", str(MESH), "--no-normalize"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--normalize" in err[0] and "--scale" in err[0]
    assert main(["scene", str(MESH), "--semantic", "object"]) == 0
    assert got["spec"].semantic == "object"
    assert main(["dataset", str(MESH), "--no-progress", "--semantic", "material"]) == 0
    assert got["spec"].semantic == "material"


def test_export_defaults_equal_the_export_functions_defaults(tmp_path, monkeypatch):
    """`render --export colmap` uses export_colmap's own defaults: the same as `export`."""
    import inspect

    from blendtruth.exports.colmap import export_colmap

    got = _record(monkeypatch, tmp_path)
    folder = tmp_path / "render"
    (folder / "views").mkdir(parents=True)
    (folder / "views" / "0000.npz").write_bytes(b"")
    assert main(["export", "colmap", str(folder)]) == 0
    params = inspect.signature(export_colmap).parameters
    assert got["max_points"] == params["max_points"].default
    assert got["image_factors"] == params["image_factors"].default


def _all_help_text() -> str:
    texts = []
    for name, command in cli.commands.items():
        texts.append(command.help or "")
        ctx = click.Context(command, info_name=name)
        for param in command.params:
            record = param.get_help_record(ctx) if isinstance(param, click.Option) else None
            texts.append(record[1] if record else "")
    return "\n".join(texts)


def test_help_points_at_docs_the_installed_package_carries(capsys):
    """Help names `blendtruth docs TOPIC`, never a docs/*.md path the wheel lacks; every
    topic named exists in the package (docs/ ships as blendtruth/docs, pyproject's
    package-data), and the command prints it."""
    from blendtruth.cli.tools import doc_topics

    text = _all_help_text()
    assert not re.search(r"docs/\w+\.md", text)
    topics = doc_topics()
    named = set(re.findall(r"`blendtruth docs (\w+)`", text))
    assert named and named <= set(topics), named - set(topics)
    assert main(["docs"]) == 0
    listing = capsys.readouterr().out
    assert all(t in listing for t in topics)
    assert main(["docs", "scenes"]) == 0
    assert "Cameras and the ground plane" in capsys.readouterr().out
    assert main(["docs", "nope"]) == 2
    assert "no topic 'nope'" in capsys.readouterr().err


def test_scene_runs_its_exports(tmp_path, monkeypatch, capsys):
    """`scene --export` was accepted and ignored; it now exports the scene's folder."""
    got = _record(monkeypatch, tmp_path)
    assert main(["scene", str(MESH), "--export", "colmap,exr", "--out", "sc"]) == 0
    assert got["formats"] == ["colmap", "exr"] and got["export_path"] == Path("sc")
    assert "exported colmap, exr" in capsys.readouterr().out
    assert main(["scene", str(MESH), "--export", "nerfstudio", "--no-rgb"]) == 2


def test_render_help_is_grouped_in_panels(capsys):
    from blendtruth.cli.panels import PANELS

    assert main(["render", "--help"]) == 0
    text = capsys.readouterr().out
    for title in ("Output", "Image", "Cameras", "Model and light", "Ground truth", "Running"):
        assert f"─ {title} ─" in text, title
    # Every panel option exists on some grouped command (no stale names).
    names = {o for c in ("render", "dataset", "scene") for p in cli.commands[c].params
             for o in p.opts}  # fmt: skip
    assert {o for _, opts in PANELS for o in opts} <= names
