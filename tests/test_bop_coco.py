"""BOP and COCO exports of a physics-settled scene, read back by pycocotools and by a BOP
reader written here from bop_toolkit's documented format (docs/bop_datasets_format.md),
checked against our masks and against an independent ray cast of the BOP models."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from blendtruth import amodal
from blendtruth.cli import main

trimesh = pytest.importorskip("trimesh")
pytest.importorskip("pycocotools")

SCENE = ["--objects", "4", "--width", "64", "--height", "48", "--views", "2", "--samples", "2"]
SCENE += ["--seed", "3", "--passes", "instance", "--amodal", "--radius", "4", "--elevation", "40"]


@pytest.fixture(scope="module")
def scene(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("annot")
    trimesh.creation.box(extents=(0.8, 0.5, 0.3)).export(folder / "box.obj")
    trimesh.creation.icosphere(subdivisions=2, radius=0.5).export(folder / "ball.obj")
    out = folder / "scene"
    pool = [str(folder / "box.obj"), str(folder / "ball.obj")]
    assert main(["scene", *pool, *SCENE, "--out", str(out)]) == 0
    return out


def views(folder: Path):
    for path in sorted((folder / "views").glob("*.npz")):
        with np.load(path) as data:
            arrays = {k: data[k] for k in data.files}
        h, w = arrays["instance"].shape
        masks = dict(
            zip(arrays["amodal_ids"].tolist(), amodal.unpack(arrays["amodal"], h, w), strict=True)
        )
        yield path.stem, arrays, masks, json.loads(str(arrays["meta"]))


def objects(folder: Path) -> list[dict]:
    rows = json.loads((folder / "instances.json").read_text())["instances"]
    return [r for r in rows if r["source"] != "ground"]


def box_of(mask: np.ndarray) -> list[int]:
    """[x, y, w, h] recomputed with cv2 (an independent implementation)."""
    x, y, w, h = cv2.boundingRect(mask.astype(np.uint8))
    return [x, y, w, h]


@pytest.mark.render
def test_boxes_and_poses_in_meta(scene):
    table = {r["id"]: r for r in objects(scene)}
    for name, arrays, masks, meta in views(scene):
        world_to_cam = np.linalg.inv(arrays["cam_to_world"])
        h, w = arrays["instance"].shape
        for inst, row in table.items():
            got = meta["instances"][str(inst)]
            seen = arrays["instance"] == inst
            assert got["bbox_visib"] == (box_of(seen) if seen.any() else None)
            assert got["bbox_amodal"] == box_of(masks[inst])
            to_cam = world_to_cam @ np.array(row["object_to_world"])
            np.testing.assert_allclose(got["object_to_camera"], to_cam, atol=1e-9)
            assert row["views"][name] == got  # the id table holds the same
            # The projected 3D box holds every pixel centre of the amodal mask (K's pixel
            # centres at +0.5); for the box model, whose mesh is its bounding box, the
            # pixel centres inside the projected hull are exactly the amodal mask.
            hull = cv2.convexHull(np.array(got["box_corners_px"], np.float32))
            v, u = np.mgrid[0:h, 0:w]
            centres = zip(u.ravel() + 0.5, v.ravel() + 0.5, strict=True)
            dist = np.array([cv2.pointPolygonTest(hull, c, True) for c in centres])
            dist = dist.reshape(h, w)
            assert (dist[masks[inst]] >= -1e-3).all()
            if row["source"].endswith("box.obj"):
                assert np.array_equal(dist > 0, masks[inst])


@pytest.mark.render
@pytest.mark.parametrize("which", ["visible", "amodal"])
def test_coco_masks_boxes_areas(scene, tmp_path, which):
    from pycocotools.coco import COCO

    out = tmp_path / which
    assert main(["export", "coco", str(scene), "--out", str(out), "--coco-mask", which]) == 0
    coco = COCO(str(out / "coco" / "instances.json"))
    names = {c["id"]: c["name"] for c in coco.loadCats(coco.getCatIds())}
    assert sorted(names.values()) == ["ball", "box"]
    rows = {r["id"]: r for r in objects(scene)}
    seen_pairs = set()
    for image, (name, arrays, masks, _) in zip(coco.dataset["images"], views(scene), strict=True):
        assert image["blendtruth_view"].endswith(name)
        assert (out / image["file_name"]).resolve() == (scene / "rgb" / f"{name}.png").resolve()
        for ann in coco.loadAnns(coco.getAnnIds(imgIds=image["id"])):
            inst = ann["instance_id"]
            ours = masks[inst] if which == "amodal" else arrays["instance"] == inst
            assert np.array_equal(coco.annToMask(ann).astype(bool), ours)
            assert ann["area"] == ours.sum()
            assert ann["bbox"] == box_of(ours)
            assert names[ann["category_id"]] == Path(rows[inst]["source"]).stem
            assert ann["iscrowd"] == 0
            seen_pairs.add((name, inst))
        # Every object with pixels is annotated; the ground never is.
        for inst in rows:
            has = (masks[inst] if which == "amodal" else arrays["instance"] == inst).any()
            assert ((name, inst) in seen_pairs) == bool(has)
    assert seen_pairs


# ---------- BOP, read back from the documented format ----------


def read_bop_scene(folder: Path) -> dict:
    """Every file of a BOP scene folder, per bop_toolkit's format description."""
    data = {k: json.loads((folder / f"{k}.json").read_text())
            for k in ("scene_camera", "scene_gt", "scene_gt_info")}  # fmt: skip
    images = {}
    for key, cam in data["scene_camera"].items():
        im = int(key)
        depth = cv2.imread(str(folder / "depth" / f"{im:06d}.png"), cv2.IMREAD_UNCHANGED)
        assert depth.dtype == np.uint16
        gts = []
        for gt_id, (gt, info) in enumerate(
            zip(data["scene_gt"][key], data["scene_gt_info"][key], strict=True)
        ):
            stem = f"{im:06d}_{gt_id:06d}.png"
            mask = cv2.imread(str(folder / "mask" / stem), cv2.IMREAD_UNCHANGED)
            visib = cv2.imread(str(folder / "mask_visib" / stem), cv2.IMREAD_UNCHANGED)
            assert set(np.unique(mask)) <= {0, 255} and set(np.unique(visib)) <= {0, 255}
            gts.append({**gt, **info, "mask": mask > 0, "mask_visib": visib > 0})
        images[im] = {
            "K": np.array(cam["cam_K"]).reshape(3, 3),
            "R_w2c": np.array(cam["cam_R_w2c"]).reshape(3, 3),
            "t_w2c": np.array(cam["cam_t_w2c"]),
            "depth_mm": depth * cam["depth_scale"],
            "depth_scale": cam["depth_scale"],
            "gts": gts,
        }
    return images


def cast_model(model, K, R, t, h, w) -> np.ndarray:  # noqa: N803
    """Bool h×w: the pixels (OpenCV centres: integer coordinates) whose ray hits the model
    posed at (R, t) (mm), by trimesh + Embree."""
    from trimesh.ray.ray_pyembree import RayMeshIntersector

    posed = trimesh.Trimesh(model.vertices @ R.T + t, model.faces, process=False)
    v, u = np.mgrid[0:h, 0:w]
    dirs = np.stack([u.ravel(), v.ravel(), np.ones(h * w)], axis=1) @ np.linalg.inv(K).T
    dirs /= np.linalg.norm(dirs, axis=1, keepdims=True)
    hit = RayMeshIntersector(posed).intersects_any(np.zeros_like(dirs), dirs)
    return hit.reshape(h, w)


@pytest.mark.render
def test_bop_scene_reads_back_exactly(scene, tmp_path):
    assert main(["export", "bop", str(scene), "--out", str(tmp_path)]) == 0
    root = tmp_path / "bop"
    info = json.loads((root / "models" / "models_info.json").read_text())
    models = {int(k): trimesh.load(root / "models" / f"obj_{int(k):06d}.ply", process=False)
              for k in info}  # fmt: skip
    for k, m in models.items():
        lo, hi = m.vertices.min(axis=0), m.vertices.max(axis=0)
        np.testing.assert_allclose(lo, [info[str(k)][f"min_{c}"] for c in "xyz"], atol=1e-5)
        np.testing.assert_allclose(hi - lo, [info[str(k)][f"size_{c}"] for c in "xyz"], atol=1e-5)
        np.testing.assert_allclose((lo + hi) / 2, 0, atol=1e-4)  # origin at the box centre
    images = read_bop_scene(root / "train_pbr" / "000000")
    ours = list(views(scene))
    rows = objects(scene)
    mismatch = 0
    for im, image in images.items():
        name, arrays, masks, _ = ours[im]
        h, w = arrays["instance"].shape
        # Depth: PNG x depth_scale = our depth in mm within half a quantisation step.
        err = np.abs(image["depth_mm"] - arrays["depth"] * 1000.0)
        assert err.max() <= image["depth_scale"] / 2 + 1e-3
        assert len(image["gts"]) == len(rows)
        for gt, row in zip(image["gts"], rows, strict=True):
            full, seen = masks[row["id"]], arrays["instance"] == row["id"]
            assert np.array_equal(gt["mask"], full) and np.array_equal(gt["mask_visib"], seen)
            assert gt["px_count_all"] == full.sum() and gt["px_count_visib"] == seen.sum()
            assert gt["visib_fract"] == pytest.approx(gt["px_count_visib"] / gt["px_count_all"])
            R = np.array(gt["cam_R_m2c"]).reshape(3, 3)  # noqa: N806
            t = np.array(gt["cam_t_m2c"])
            np.testing.assert_allclose(R @ R.T, np.eye(3), atol=1e-9)
            model = models[gt["obj_id"]]
            # Every vertex in front projects (rounded to the nearest OpenCV pixel) inside
            # the amodal mask, or onto its one-pixel border (a vertex on the silhouette).
            cam = model.vertices @ R.T + t
            uv = cam @ image["K"].T
            px = np.rint(uv[:, :2] / uv[:, 2:]).astype(int)
            inside = (px[:, 0] >= 0) & (px[:, 0] < w) & (px[:, 1] >= 0) & (px[:, 1] < h)
            grown = cv2.dilate(full.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
            assert grown[px[inside, 1], px[inside, 0]].all()
            # An independent ray cast of the model at that pose gives the mask.
            cast = cast_model(model, image["K"], R, t, h, w)
            mismatch += int((cast != full).sum())
    assert mismatch == 0


@pytest.mark.render
def test_bad_inputs_are_one_line(scene, tmp_path, capsys):
    import shutil

    bare = tmp_path / "bare"
    shutil.copytree(scene, bare)
    (bare / "instances.json").unlink()
    no_amodal = tmp_path / "no_amodal"
    shutil.copytree(scene, no_amodal)
    for path in (no_amodal / "views").glob("*.npz"):
        with np.load(path) as data:
            kept = {k: data[k] for k in data.files if k not in ("amodal", "amodal_ids")}
        np.savez(path, **kept)
    ball_only = tmp_path / "map.json"
    ball_only.write_text(json.dumps({"ball*": 1}))
    out = str(tmp_path / "o")
    for args, needle in [
        (["coco", str(bare)], "no instances.json"),
        (["bop", str(bare)], "no instances.json"),
        (["coco", str(scene), "--semantic-map", str(ball_only)], "no pattern matches"),
        (["coco", str(no_amodal), "--coco-mask", "amodal"], "--amodal"),
        (["bop", str(no_amodal)], "--amodal"),
        (["bop", str(scene), "--bop-depth-scale", "0.0001"], "--bop-depth-scale"),
        (["bop", str(scene), "--bop-depth-scale", "x"], "--bop-depth-scale"),
    ]:
        code = main(["export", *args, "--out", out])
        err = capsys.readouterr().err.strip()
        assert code == 2 and needle in err and len(err.splitlines()) == 1, err


@pytest.mark.render
def test_semantic_map_names_the_categories(scene, tmp_path):
    from pycocotools.coco import COCO

    mapping = tmp_path / "map.json"
    mapping.write_text(json.dumps({"ball*": 7, "box.obj": 3}))
    assert main(["export", "coco", str(scene), "--out", str(tmp_path), "--semantic-map",
                 str(mapping)]) == 0  # fmt: skip
    coco = COCO(str(tmp_path / "coco" / "instances.json"))
    assert {c["id"]: c["name"] for c in coco.dataset["categories"]} == {3: "box.obj", 7: "ball*"}
    rows = {r["id"]: r for r in objects(scene)}
    for ann in coco.dataset["annotations"]:
        expect = 7 if rows[ann["instance_id"]]["source"].endswith("ball.obj") else 3
        assert ann["category_id"] == expect


@pytest.mark.render
def test_distractors_get_ids_and_are_annotated_only_when_asked(tmp_path):
    from pycocotools.coco import COCO

    trimesh.creation.box(extents=(0.8, 0.5, 0.3)).export(tmp_path / "box.obj")
    trimesh.creation.cylinder(radius=0.2, height=0.6).export(tmp_path / "cyl.obj")
    out = tmp_path / "scene"
    args = ["scene", str(tmp_path / "box.obj"), *SCENE, "--objects", "2", "--distractors"]
    args += [str(tmp_path / "cyl.obj"), "--distractor-count", "2", "--out", str(out)]
    assert main(args) == 0
    saved = json.loads((out / "scene.json").read_text())
    assert [o.get("distractor", False) for o in saved["objects"]] == [False] * 2 + [True] * 2
    rows = json.loads((out / "instances.json").read_text())["instances"]
    flagged = {r["id"] for r in rows if r["distractor"]}
    assert len(flagged) == 2 and all(r["source"].endswith("cyl.obj") for r in rows
                                     if r["id"] in flagged)  # fmt: skip
    shown = {r["id"] for r in rows if any(r["pixels"].values())}
    assert flagged & shown  # the test means something only if a distractor is seen
    for extra, expect in (([], False), (["--distractors"], True)):
        target = tmp_path / f"x{len(extra)}"
        assert main(["export", "coco,bop", str(out), "--out", str(target), *extra]) == 0
        coco = COCO(str(target / "coco" / "instances.json"))
        ids = {a["instance_id"] for a in coco.dataset["annotations"]}
        assert bool(ids & flagged) == expect
        gt = json.loads((target / "bop/train_pbr/000000/scene_gt.json").read_text())
        assert len(gt["0"]) == (4 if expect else 2)
