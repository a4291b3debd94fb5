"""Everything above the renderers, driven by the fake backend (no Blender): render_model,
the in-memory render_views, a dataset run and every export. The truth is closed form: the
fake scene is two axis-aligned boxes, cast here independently by tests/analytic.ray_box."""

from __future__ import annotations

import dataclasses
import json

import cv2
import numpy as np
import pytest

from blendtruth.api import Renderer
from blendtruth.errors import BlendtruthError
from blendtruth.exports import export, formats
from blendtruth.multiview import ViewPlan, render_model
from blendtruth.scene import SceneSpec
from blendtruth.settings import RenderSettings
from blendtruth.testing import BOXES, FakeBackend

from analytic import ray_box

SETTINGS = RenderSettings(width=64, height=48, passes=("depth", "distance", "normal", "mask",
                          "instance", "semantic", "boundary"))  # fmt: skip
PLAN = ViewPlan(sampler="orbit", views=3)
# float32 depth and the ray caster's float64 refinement: far below a half-pixel shift
# (which moves silhouette pixels) or a 1e-3 scale error (1.6e-3 units at these depths).
DEPTH_RTOL = 1e-5


def _analytic(camera) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(depth, mask, instance) of the two boxes seen by ``camera``, nearest box wins."""
    best = np.full((camera.height, camera.width), np.inf)
    instance = np.zeros(best.shape, np.int32)
    for i, (lo, hi) in enumerate(BOXES):
        depth, _, _, mask = ray_box(camera.intrinsics, camera.cam_to_world, lo, hi)
        closer = mask & (depth < best)
        best[closer], instance[closer] = depth[closer], i + 1
    mask = np.isfinite(best)
    return np.where(mask, best, 0.0), mask, instance


def _check_against_boxes(depth, mask, instance, camera) -> None:
    truth, truth_mask, truth_instance = _analytic(camera)
    np.testing.assert_array_equal(mask, truth_mask)
    np.testing.assert_array_equal(instance, truth_instance)
    np.testing.assert_allclose(depth[mask], truth[mask], rtol=DEPTH_RTOL)
    assert 0.05 < mask.mean() < 0.9  # the boxes are in view, not filling it


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    out = tmp_path_factory.mktemp("fake") / "model"
    settings = dataclasses.replace(SETTINGS, amodal=True)  # export bop needs amodal masks
    render_model(SceneSpec.parse("box.obj"), PLAN, settings, out, backend=FakeBackend())
    return out


def _view(folder, name: str) -> dict[str, np.ndarray]:
    with np.load(folder / "views" / f"{name}.npz") as f:
        return dict(f)


def _camera(v: dict):
    from blendtruth.geometry.camera import Intrinsics
    from blendtruth.view import Camera

    return Camera(Intrinsics.from_K(v["K"], 64, 48), v["cam_to_world"])


def test_render_model_writes_the_boxes_exact_truth(rendered):
    cams = json.loads((rendered / "cameras.json").read_text())
    assert len(cams["frames"] if "frames" in cams else cams["views"]) == 3
    for name in ("0000", "0001", "0002"):
        v = _view(rendered, name)
        _check_against_boxes(v["depth"], v["mask"], v["instance"], _camera(v))
        # Derived passes, made once above the backend: semantic = instance id here.
        np.testing.assert_array_equal(v["semantic"], v["instance"])
        assert v["boundary"].any() and not (v["boundary"] & ~v["mask"]).any()
        rgb = cv2.imread(str(rendered / "rgb" / f"{name}.png"))[..., ::-1]
        np.testing.assert_array_equal(rgb.any(axis=2), v["mask"])
    meta = json.loads(str(_view(rendered, "0000")["meta"]))
    assert meta["ground_truth"]["backend"] == "raycast"
    assert meta["width"] == 64 and meta["scene"]["models"] == ["box.obj"]


def test_render_views_yields_the_arrays_render_model_wrote(rendered):
    with Renderer(FakeBackend) as r:
        views = list(r.render_views("box.obj", PLAN, SETTINGS))
    assert len(views) == 3
    for i, view in enumerate(views):
        v = _view(rendered, f"{i:04d}")
        np.testing.assert_array_equal(view.cam_to_world, v["cam_to_world"])
        for name, array in view.passes().items():
            np.testing.assert_array_equal(array, v[name], err_msg=name)
        rgb = cv2.imread(str(rendered / "rgb" / f"{i:04d}.png"))[..., ::-1]
        np.testing.assert_array_equal(view.rgb, rgb)


def test_a_dataset_run_with_the_fake_backend(tmp_path):
    from blendtruth.dataset.runner import DatasetOptions, run_dataset

    model = tmp_path / "in" / "box.obj"
    model.parent.mkdir()
    model.write_text("v 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 3\n")  # never read by the fake
    options = DatasetOptions(workers=1, progress=False, backend=FakeBackend)
    summary = run_dataset([model.parent], tmp_path / "ds", SceneSpec(), PLAN, SETTINGS, options)
    assert summary["models_done"] == 1 and summary["models_failed"] == 0, summary
    (folder,) = (tmp_path / "ds" / "models").iterdir()
    for name in ("0000", "0002"):
        v = _view(folder, name)
        _check_against_boxes(v["depth"], v["mask"], v["instance"], _camera(v))


def _quaternion_matrix(q) -> np.ndarray:
    w, x, y, z = q
    return np.array([
        [1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
        [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
        [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)],
    ])  # fmt: skip


@pytest.mark.parametrize("fmt", sorted(formats()))
def test_every_export_of_a_fake_render(rendered, tmp_path, fmt):
    if fmt in ("flo", "kitti_flow", "tapvid"):  # motion formats: a static render has none
        with pytest.raises(BlendtruthError, match="--frames|--tracks|RGB"):
            export(fmt, rendered, tmp_path)
        return
    written = export(fmt, rendered, tmp_path)
    assert written
    # Every format writes only under the names it declares (a new render replaces them).
    declared = formats()[fmt].writes
    assert all(p.relative_to(tmp_path).parts[0] in declared for p in written), fmt
    v0 = _view(rendered, "0000")
    truth, mask, _ = _analytic(_camera(v0))
    if fmt == "colmap":
        cams = (tmp_path / "sparse" / "0" / "cameras.txt").read_text().splitlines()
        fields = next(line for line in cams if not line.startswith("#")).split()
        assert fields[1] == "PINHOLE" and list(map(float, fields[2:])) == [
            64, 48, *v0["K"][0, [0]], v0["K"][1, 1], v0["K"][0, 2], v0["K"][1, 2]
        ]  # fmt: skip
        images = (tmp_path / "sparse" / "0" / "images.txt").read_text().splitlines()
        first = next(line for line in images if not line.startswith("#")).split()
        rot = _quaternion_matrix(list(map(float, first[1:5])))
        world_to_cam = np.linalg.inv(v0["cam_to_world"])
        np.testing.assert_allclose(rot, world_to_cam[:3, :3], atol=1e-9)
        np.testing.assert_allclose(list(map(float, first[5:8])), world_to_cam[:3, 3], atol=1e-9)
    elif fmt == "nerfstudio":
        data = json.loads((tmp_path / "transforms.json").read_text())
        frame = data["frames"][0]
        # nerfstudio reads the .npy times its depth_unit_scale_factor (1e-3 by default).
        depth = np.load(tmp_path / frame["depth_file_path"]) * data["depth_unit_scale_factor"]
        np.testing.assert_allclose(depth[mask], truth[mask], rtol=DEPTH_RTOL)
        gl = v0["cam_to_world"] @ np.diag([1.0, -1.0, -1.0, 1.0])
        np.testing.assert_allclose(frame["transform_matrix"], gl, atol=1e-15)
    elif fmt == "exr":
        import OpenEXR

        with OpenEXR.File(str(tmp_path / "exr" / "0000.exr")) as f:
            ch = {k: c.pixels for k, c in f.channels().items()}
        np.testing.assert_allclose(ch["depth"][mask], truth[mask], rtol=DEPTH_RTOL)
        assert (ch["depth"][~mask] == 0).all()
    elif fmt == "png16":
        scale = json.loads((tmp_path / "png16" / "meta.json").read_text())["depth_scale"]
        a = cv2.imread(str(tmp_path / "png16" / "0000.png"), cv2.IMREAD_UNCHANGED)
        assert np.abs(a[mask] * scale - truth[mask]).max() <= scale / 2 + 1e-9
        assert (a[~mask] == 0).all()
    elif fmt == "coco":
        coco_api = pytest.importorskip("pycocotools.coco")
        coco = coco_api.COCO(str(tmp_path / "coco" / "instances.json"))
        first = min(coco.getImgIds())
        union = np.zeros_like(mask)
        for ann in coco.loadAnns(coco.getAnnIds(imgIds=[first])):
            union |= coco.annToMask(ann).astype(bool)
        np.testing.assert_array_equal(union, mask)
    elif fmt == "bop":
        (scene,) = sorted((tmp_path / "bop").glob("*/0*"))
        info = json.loads((scene / "scene_gt_info.json").read_text())
        first = info[min(info, key=int)]
        assert sum(i["px_count_visib"] for i in first) == mask.sum()
        cams = json.loads((scene / "scene_camera.json").read_text())
        scale = cams[min(cams, key=int)]["depth_scale"]
        (png,) = sorted((scene / "depth").glob("*.png"))[:1]
        a = cv2.imread(str(png), cv2.IMREAD_UNCHANGED).astype(np.float64)
        # Scene units are metres: BOP depth is millimetres, counts × depth_scale.
        assert np.abs(a[mask] * scale - 1000 * truth[mask]).max() <= scale / 2 + 1e-6
    elif fmt == "webdataset":
        wds = pytest.importorskip("webdataset")
        target = tmp_path / "webdataset"
        manifest = json.loads((target / "manifest.json").read_text())
        urls = [str(target / s["file"]) for s in manifest["shards"]]
        samples = list(wds.WebDataset(urls, shardshuffle=False).decode("rgb8"))
        assert len(samples) == 3
        np.testing.assert_allclose(samples[0]["depth.npy"][mask], truth[mask], rtol=DEPTH_RTOL)
        np.testing.assert_array_equal(samples[0]["mask.npy"], mask)
