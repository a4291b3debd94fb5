"""HDRI lighting and backgrounds: options are validated in one line, RGB changes with the
light, and every ground-truth array stays bit-identical."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from blendtruth.cli import main
from blendtruth.errors import BlendtruthError
from blendtruth.scene import SceneSpec
from blendtruth.scenes.lights import (
    composite_background,
    parse_background,
    parse_rotation,
    rotation_for_view,
    srgb_to_linear,
)

NOT_GROUND_TRUTH = {"rgb", "alpha", "meta"}


# ---------- pure ----------


def test_hdri_file_validation(tmp_path):
    (tmp_path / "fake.exr").write_bytes(b"not an exr at all")
    (tmp_path / "fake.hdr").write_bytes(b"P6\n")
    (tmp_path / "pano.png").write_bytes(b"\x89PNG")
    (tmp_path / "ok.hdr").write_bytes(b"#?RADIANCE\nFORMAT=32-bit_rle_rgbe\n")
    for name, needle in [
        ("missing.exr", "no such file"),
        ("fake.exr", "not an OpenEXR"),
        ("fake.hdr", "not an Radiance HDR"),
        ("pano.png", "unknown HDRI format"),
    ]:
        with pytest.raises(BlendtruthError, match=needle):
            SceneSpec(primitive="cube", hdri=tmp_path / name)
    spec = SceneSpec(primitive="cube", hdri=tmp_path / "ok.hdr")
    assert spec.light == "hdri"
    with pytest.raises(BlendtruthError, match="exclude"):
        SceneSpec(primitive="cube", hdri=tmp_path / "ok.hdr", light="sun")
    with pytest.raises(BlendtruthError, match="needs --hdri"):
        SceneSpec(primitive="cube", light="hdri")
    with pytest.raises(BlendtruthError, match="--light"):
        SceneSpec(primitive="cube", light="hdri:mars")


def test_background_and_rotation_parsing():
    assert parse_background("transparent") == "transparent"
    assert parse_background("#ff0080") == (1.0, 0.0, 128 / 255)
    assert parse_background("0.5,0.25,1") == (0.5, 0.25, 1.0)
    for bad in ("#ff00", "1,2,3", "red", "0.1,0.2"):
        with pytest.raises(BlendtruthError, match="--background"):
            parse_background(bad)
    with pytest.raises(BlendtruthError, match="--background hdri needs"):
        SceneSpec(primitive="cube", background="hdri")
    assert parse_rotation("90") == 90.0 and parse_rotation("random") == "random"
    for bad in ("left", float("nan")):
        with pytest.raises(BlendtruthError, match="--hdri-rotation"):
            parse_rotation(bad)
    with pytest.raises(BlendtruthError, match="--hdri-strength"):
        SceneSpec(primitive="cube", light="hdri:city", hdri_strength=-1.0)


def test_rotation_modes_are_seeded():
    a, b = np.eye(4), np.eye(4)
    b[0, 3] = 1.0
    assert rotation_for_view(33.0, 0, "m", a) == 33.0
    per_model = [rotation_for_view("random", 7, "m.obj", p) for p in (a, b)]
    assert per_model[0] == per_model[1] and 0 <= per_model[0] < 360
    assert rotation_for_view("random", 8, "m.obj", a) != per_model[0]
    assert rotation_for_view("random", 7, "n.obj", a) != per_model[0]
    per_view = [rotation_for_view("random-per-view", 7, "m.obj", p) for p in (a, b)]
    assert per_view[0] != per_view[1]
    assert per_view[0] == rotation_for_view("random-per-view", 7, "m.obj", a.copy())


def test_composite_background_math():
    rng = np.random.default_rng(0)
    alpha = rng.uniform(0, 1, (4, 5)).astype(np.float32)
    alpha[0, 0] = 0.0
    straight = rng.uniform(0, 1, (4, 5, 3))
    combined = np.dstack([straight * alpha[..., None], alpha])
    env = rng.uniform(0, 2, (4, 5, 3))
    world, a = composite_background(combined, env, "world")
    np.testing.assert_allclose(world, combined[..., :3] + env)
    np.testing.assert_array_equal(a, alpha)
    tr, _ = composite_background(combined, None, "transparent")
    np.testing.assert_allclose(tr[alpha > 0], straight[alpha > 0], rtol=1e-6)
    assert np.all(tr[0, 0] == 0)
    col, _ = composite_background(combined, None, (1.0, 0.5, 0.0))
    lin = srgb_to_linear(np.array([1.0, 0.5, 0.0]))
    np.testing.assert_allclose(col, combined[..., :3] + (1 - alpha[..., None]) * lin, rtol=1e-6)
    # sRGB 0.5 is linear 0.2140 (IEC 61966-2-1).
    assert abs(lin[1] - 0.21404114) < 1e-7


def test_bad_hdri_on_the_cli_is_one_line(tmp_path, capsys):
    (tmp_path / "x.hdr").write_text("hello")
    for args, needle in [
        (["--hdri", str(tmp_path / "none.exr")], "no such file"),
        (["--hdri", str(tmp_path / "x.hdr")], "not an Radiance HDR"),
        (["--background", "hdri"], "--background hdri needs"),
        (["--light", "hdri:city", "--hdri-rotation", "sideways"], "--hdri-rotation"),
    ]:
        code = main(["render", "cube", "--out", str(tmp_path / "o"), *args])
        err = capsys.readouterr().err.strip()
        assert code == 2 and needle in err and len(err.splitlines()) == 1, err
        assert not (tmp_path / "o").exists()


# ---------- render ----------


def _render(tmp_path: Path, tag: str, **spec_fields) -> dict[str, np.ndarray]:
    from blendtruth.multiview import ViewPlan, render_model
    from blendtruth.settings import RenderSettings

    spec = SceneSpec(primitive="monkey", normalize=False, **spec_fields)
    plan = ViewPlan(sampler="orbit", views=1, fov_deg=50.0)
    settings = RenderSettings(width=48, height=36, samples=4)
    render_model(spec, plan, settings, tmp_path / tag)
    views = {}
    for path in sorted((tmp_path / tag / "views").glob("*.npz")):
        with np.load(path) as data:
            views[path.stem] = {k: data[k] for k in data.files}
    return views


@pytest.mark.render
def test_hdri_changes_rgb_never_ground_truth(tmp_path):
    import bpy

    forest = Path(bpy.utils.system_resource("DATAFILES", path="studiolights/world")) / "forest.exr"
    shutil.copy(forest, tmp_path / "my forest.exr")
    configs = {
        "studio": {},
        "city": {"light": "hdri:city"},
        "city_rot": {"light": "hdri:city", "hdri_rotation": 120.0},
        "file": {"hdri": tmp_path / "my forest.exr", "hdri_strength": 2.0},
        "transparent": {"light": "hdri:city", "background": "transparent"},
        "colour": {"light": "hdri:sunset", "background": "#2040ff"},
    }
    results = {tag: _render(tmp_path, tag, **fields) for tag, fields in configs.items()}
    ref = results["studio"]
    for tag, views in results.items():
        for name, arrays in views.items():
            gt = set(arrays) - NOT_GROUND_TRUTH
            assert {"depth", "distance", "normal", "mask"} <= gt
            for key in gt:
                assert np.array_equal(arrays[key], ref[name][key]), (tag, name, key)
            assert arrays["mask"].sum() > 200
            meta = json.loads(str(arrays["meta"]))["lighting"]
            assert meta["light"] == SceneSpec(primitive="monkey", **configs[tag]).light
            if tag == "studio":
                continue
            # RGB differs from the studio light's (mean absolute difference in 8-bit levels).
            diff = np.abs(arrays["rgb"].astype(int) - ref[name]["rgb"].astype(int)).mean()
            assert diff > 3.0, (tag, name, diff)
    for name in ref:
        rot = np.abs(
            results["city_rot"][name]["rgb"].astype(int) - results["city"][name]["rgb"].astype(int)
        )
        assert rot.mean() > 3.0, rot.mean()
        meta = json.loads(str(results["city_rot"][name]["meta"]))["lighting"]
        assert meta["hdri_rotation_deg"] == 120.0 and meta["hdri_rotation_mode"] == "fixed"
        assert meta["hdri"].endswith("studiolights/world/city.exr")
        # Transparent: background pixels have alpha 0 and colour 0; the PNG is RGBA.
        tr = results["transparent"][name]
        assert np.all(tr["rgb"][tr["alpha"] == 0] == 0)
        assert (tr["alpha"] == 0).sum() > 500
        # Colour: a fully uncovered pixel shows exactly the colour #2040ff.
        col = results["colour"][name]
        bg = col["alpha"] == 0
        assert np.all(col["rgb"][bg] == [0x20, 0x40, 0xFF])
        meta = json.loads(str(results["file"][name]["meta"]))["lighting"]
        assert meta["hdri"] == str(tmp_path / "my forest.exr") and meta["hdri_strength"] == 2.0
    import cv2

    png = cv2.imread(str(tmp_path / "transparent" / "rgb" / "0000.png"), cv2.IMREAD_UNCHANGED)
    assert png.shape == (36, 48, 4)
    tr0 = results["transparent"]["0000"]
    np.testing.assert_array_equal(png[..., 3], np.round(tr0["alpha"] * 255).astype(np.uint8))
    np.testing.assert_array_equal(png[..., 2::-1], tr0["rgb"])


@pytest.mark.render
def test_hdri_rotation_turns_the_environment_counter_clockwise():
    """Seen through an equirect camera looking along world +X (up +Z), an environment
    turned by +90° about +Z (counter-clockwise from above) moves a quarter turn towards
    -λ: the image rolls W/4 pixels to the left. Upper half only (the plane is below)."""
    import blendtruth
    from blendtruth.geometry.camera import Intrinsics
    from blendtruth.geometry.projection import model_intrinsics
    from blendtruth.view import Camera

    w, h = 64, 32
    pose = np.eye(4)
    pose[:3, :3] = np.column_stack([[0, -1, 0], [0, 0, -1], [1, 0, 0]])  # right, down, fwd
    pose[:3, 3] = [0, 0, 10]
    cam = Camera(model_intrinsics("equirect", w, h), pose, "equirect")
    assert isinstance(cam.intrinsics, Intrinsics)
    images = {}
    for angle in (0.0, 90.0):
        spec = SceneSpec(primitive="plane", light="hdri:forest", hdri_rotation=angle)
        view = blendtruth.render_view(cam, scene=spec, width=w, height=h, samples=16)
        images[angle] = view.rgb[: h // 2].astype(int)
    # Of all horizontal shifts, a quarter turn to the left explains the rotated image
    # best, by far (each pixel has its own sampling noise, so not to the last level).
    errors = {
        k: np.abs(images[90.0] - np.roll(images[0.0], k, axis=1)).mean()
        for k in range(-w // 2, w // 2)
    }
    best = min(errors, key=errors.get)
    assert best == -w // 4, (best, errors[best], errors[-w // 4])
    assert errors[best] * 2 < min(e for k, e in errors.items() if abs(k - best) > 2)
