"""Options the CLI used to accept and drop without a word, and what `show` and `export` say.

Each command runs in-process with its work replaced by a recorder at the point where the
parsed options have become what the renderer gets (SceneSpec, export arguments), so these
run without Blender."""

from __future__ import annotations

from pathlib import Path

from blendtruth.cli.main import main

MESH = Path(__file__).resolve().parents[1].parent / "shared" / "meshes" / "cow.obj"


def _record(monkeypatch, tmp_path) -> dict:
    got: dict = {}
    import blendtruth.cli.tools as tools
    import blendtruth.dataset.runner as runner
    import blendtruth.multiscene as multiscene

    def run_dataset(sources, out, spec, plan, settings, options):
        got.update(spec=spec, plan=plan, out=out)
        return {"models_done": 0, "models_failed": 0, "skipped_already_done": 0, "views": 0,
                "seconds": 0.0, "failures": []}  # fmt: skip

    def render_scene(models, layout, template, plan, settings, out):
        got.update(spec=template, plan=plan, out=out, layout=layout)
        return []

    def run_exports(formats, path, out=None, show_progress=True, **options):
        got.update(formats=formats, export_path=path, export_out=out, **options)
        return []

    monkeypatch.setattr(runner, "run_dataset", run_dataset)
    monkeypatch.setattr(multiscene, "render_scene", render_scene)
    monkeypatch.setattr(tools, "run_exports", run_exports)
    monkeypatch.chdir(tmp_path)
    return got


def test_scene_refuses_normalize_in_one_line(tmp_path, monkeypatch, capsys):
    """Scenes scale each model by --scale; --no-normalize was silently ignored."""
    _record(monkeypatch, tmp_path)
    for flag in ("--no-normalize", "--normalize"):
        assert main(["scene", str(MESH), flag]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "--normalize" in err[0] and "--scale" in err[0]


def test_semantic_options_reach_scene_and_dataset(tmp_path, monkeypatch):
    """--semantic/--semantic-map were dropped by `scene` and `dataset` (class ids per model
    whatever was asked)."""
    got = _record(monkeypatch, tmp_path)
    mapping = tmp_path / "classes.json"
    mapping.write_text('{"cow*": 7}')
    assert main(["scene", str(MESH), "--semantic", "object", "--semantic-map", str(mapping)]) == 0
    assert got["spec"].semantic == "object" and got["spec"].semantic_map == (("cow*", 7),)
    assert main(["dataset", str(MESH), "--no-progress", "--semantic", "material"]) == 0
    assert got["spec"].semantic == "material"
    assert main(["dataset", str(MESH), "--no-progress"]) == 0
    assert got["spec"].semantic == "model"  # the stated default


def test_scene_runs_its_exports(tmp_path, monkeypatch, capsys):
    """`scene --export` was accepted and ignored; it now exports the scene's folder and
    says how consumers read it."""
    got = _record(monkeypatch, tmp_path)
    assert main(["scene", str(MESH), "--export", "colmap,exr", "--out", "sc"]) == 0
    assert got["formats"] == ["colmap", "exr"] and got["export_path"] == Path("sc")
    out = capsys.readouterr().out
    assert "exported colmap, exr" in out and "colmap/sparse/0" in out and "images_4/" in out
    assert main(["scene", str(MESH), "--export", "nerfstudio", "--no-rgb"]) == 2
    assert main(["scene", str(MESH), "--export", "tiff"]) == 2


def test_export_image_factors_default_is_export_colmaps(tmp_path, monkeypatch):
    """`export` and `render --export` (which calls export_colmap with its defaults) agree."""
    import inspect

    from blendtruth.exports.colmap import export_colmap

    got = _record(monkeypatch, tmp_path)
    folder = tmp_path / "render"
    (folder / "views").mkdir(parents=True)
    (folder / "views" / "0000.npz").write_bytes(b"")
    assert main(["export", "colmap", str(folder)]) == 0
    params = inspect.signature(export_colmap).parameters
    assert got["image_factors"] == params["image_factors"].default == (4,)
    assert got["max_points"] == params["max_points"].default


def test_show_summary_names_the_sheets_and_the_gallery():
    from blendtruth.cli.tools import show_summary

    one = [Path("o/contact_sheet.png"), Path("o/contact_sheet.json"), Path("o/index.html")]
    assert show_summary(one) == "wrote contact sheet o/contact_sheet.png and gallery o/index.html"
    many = [Path("o/models/a.png"), Path("o/models/a.json"), Path("o/thumbs/a.png"),
            Path("o/models/b.png"), Path("o/models/b.json"), Path("o/thumbs/b.png"),
            Path("o/index.html")]  # fmt: skip
    assert show_summary(many) == "wrote 2 contact sheets in o/models and gallery o/index.html"
