"""mesh.ply ray cast against our depth, `blendtruth check` on good and perturbed renders,
`blendtruth show` (contact sheet colour bar, HTML gallery in headless Chromium)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from blendtruth.cli import main
from blendtruth.geometry.rays import ray_directions
from blendtruth.show.contact import _instance_colors, depth_colors
from export_helpers import MESHES, ensure_mesh_ply, npz, render

pytestmark = pytest.mark.render
pytest.importorskip("bpy")
trimesh = pytest.importorskip("trimesh")


@pytest.fixture(scope="module")
def cow(tmp_path_factory) -> Path:
    return render(tmp_path_factory.mktemp("cow") / "cow", "cow.obj", 4, rgb=False)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    """A real dataset run: two good models and one bad file (a failure), with shards."""
    root = tmp_path_factory.mktemp("ds")
    src = root / "src"
    src.mkdir()
    for name in ("cow.obj", "teapot.obj"):  # triangle meshes: trimesh triangulates as Blender
        shutil.copy(MESHES / name, src / name)
    shutil.copy(MESHES / "bad" / "points_bin.ply", src / "points_bin.ply")
    out = root / "out"
    run = subprocess.run(
        [sys.executable, "-m", "blendtruth.cli", "dataset", str(src), "--out", str(out),
         "--views", "2", "--width", "32", "--height", "24", "--no-rgb", "--no-progress",
         "--workers", "1", "--export", "webdataset"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert run.returncode == 1, run.stderr  # one model failed
    for folder in (out / "models").iterdir():
        ensure_mesh_ply(folder)
    return out


def _perturbed(src: Path, dst: Path, kind: str, view: str = "0001") -> Path:
    shutil.copytree(src, dst)
    path = dst / "views" / f"{view}.npz"
    a = npz(dst, view)
    if kind == "depth":
        a["depth"] = (a["depth"] * (1 + 1e-3)).astype(np.float32)
    elif kind == "pose":  # turn the camera by the angle of half a pixel
        angle = 0.5 / a["K"][0, 0]
        c, s = np.cos(angle), np.sin(angle)
        a["cam_to_world"][:3, :3] = a["cam_to_world"][:3, :3] @ np.array(
            [[c, 0, s], [0, 1, 0], [-s, 0, c]]
        )
    elif kind == "cx":
        a["K"][0, 2] += 0.5
    np.savez_compressed(path, **a)
    return dst


# ---------------------------------------------------------------- mesh.ply


def test_mesh_ply_ray_cast_gives_our_depth(cow):
    mesh = trimesh.load(cow / "mesh.ply", process=False)  # trimesh's own PLY reader
    for name in ("0000", "0001", "0002", "0003"):
        v = npz(cow, name)
        from blendtruth.geometry.camera import Intrinsics

        dirs = ray_directions(Intrinsics.from_K(v["K"], 64, 48)).reshape(-1, 3)
        rot, origin = v["cam_to_world"][:3, :3], v["cam_to_world"][:3, 3]
        loc, ray, _ = mesh.ray.intersects_location(
            np.broadcast_to(origin, dirs.shape), dirs @ rot.T, multiple_hits=False
        )
        depth = np.zeros(len(dirs))
        depth[ray] = (loc - origin) @ rot[:, 2]
        depth = depth.reshape(48, 64)
        hit = depth > 0
        assert (hit != v["mask"]).sum() <= 1
        both = hit & v["mask"]
        rel = np.abs(v["depth"][both] - depth[both]) / depth[both]
        # Measured: median <= 2.1e-7, 99th percentile <= 1.1e-6, max 3.1e-6 (Cycles and
        # embree intersect in float32; grazing pixels carry the largest error).
        assert np.median(rel) <= 1e-6
        assert (rel <= 1e-6).mean() >= 0.97
        assert rel.max() <= 1e-5


# ---------------------------------------------------------------- check


def test_check_passes_on_a_good_render(cow, capsys):
    assert main(["check", str(cow)]) == 0
    out = capsys.readouterr().out
    assert "cow: PASS" in out and "1 of 1 models pass" in out
    figures = dict(re.findall(r"(\w+) ([-\d.e]+)", out.split("views:")[1]))
    assert float(figures["depth_median"]) <= 1e-6
    assert float(figures["mask_disagreement"]) <= 0.005


@pytest.mark.parametrize(
    ("kind", "needle"),
    [("depth", "depth_median"), ("pose", "mask_disagreement"), ("cx", "depth_outliers")],
)
def test_check_fails_on_perturbed_depth_pose_or_principal_point(
    cow, tmp_path, capsys, kind, needle
):
    bad = _perturbed(cow, tmp_path / "bad", kind)
    assert main(["check", str(bad)]) == 1
    out = capsys.readouterr().out
    assert "FAIL" in out and needle in out.split("FAIL")[1].split(")")[0], out


def test_check_without_mesh_is_a_one_line_error(cow, tmp_path, capsys):
    copy = tmp_path / "nomesh"
    shutil.copytree(cow, copy)
    (copy / "mesh.ply").unlink()
    assert main(["check", str(copy)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "mesh.ply" in err[0]


def test_check_a_dataset(dataset, capsys):
    assert main(["check", str(dataset)]) == 0
    out = capsys.readouterr().out
    assert out.count(": PASS") == 2 and "2 of 2 models pass" in out


# ---------------------------------------------------------------- show


def test_contact_sheet_colour_bar_spans_the_depth_range(cow, tmp_path):
    copy = tmp_path / "withids"
    shutil.copytree(cow, copy)
    for name in ("0000", "0001", "0002", "0003"):  # an instance pass, as the lead's renders have
        a = npz(copy, name)
        a["instance"] = (a["mask"] * 7).astype(np.int32)
        np.savez_compressed(copy / "views" / f"{name}.npz", **a)
    assert main(["show", str(copy), "--out", str(tmp_path / "show"), "--views", "3"]) == 0
    sheet = cv2.imread(str(tmp_path / "show" / "contact_sheet.png"))[..., ::-1]
    info = json.loads((tmp_path / "show" / "contact_sheet.json").read_text())
    assert [r["view"] for r in info] == ["0000", "0002", "0003"]
    for row in info:
        v = npz(copy, row["view"])
        d = v["depth"][v["mask"]]
        assert (row["depth_min"], row["depth_max"]) == (float(d.min()), float(d.max()))
        assert row["labels"][0] == f"{d.min():.4g}" and row["labels"][-1] == f"{d.max():.4g}"
        bar = row["bar"]
        top = sheet[bar["top"], bar["x"] + bar["width"] // 2]
        bottom = sheet[bar["bottom"], bar["x"] + bar["width"] // 2]
        lo, hi = row["depth_min"], row["depth_max"]
        expect = depth_colors(np.array([[lo, hi]]), np.ones((1, 2), bool), lo, hi)[0]
        np.testing.assert_array_equal(top, expect[0])
        np.testing.assert_array_equal(bottom, expect[1])
        # The nearest and farthest pixels of the depth tile have the bar's end colours.
        tile = row["depth_tile"]
        scale = tile["height"] / 48
        for idx, colour in ((np.argmin, top), (np.argmax, bottom)):
            r, c = np.argwhere(v["mask"])[idx(d)]
            y = tile["y"] + int((r + 0.5) * scale)
            x = tile["x"] + int((c + 0.5) * scale)
            np.testing.assert_array_equal(sheet[y, x], colour)
        # Every tick has a label drawn to the right of the bar (dark text on white).
        for k in range(len(row["labels"])):
            ty = bar["top"] + round(k * (bar["bottom"] - bar["top"]) / (len(row["labels"]) - 1))
            region = sheet[max(ty - 8, bar["top"]) : ty + 8, bar["x"] + bar["width"] + 6 :][:, :60]
            assert (region.sum(axis=2) < 300).sum() > 10
    # The last column shows the instance ids (one colour for id 7), not the mask's white.
    ids_tile = sheet[info[0]["depth_tile"]["y"] : info[0]["depth_tile"]["y"] + 160, -170:-6]
    colours = {tuple(c) for c in ids_tile.reshape(-1, 3)}
    id7 = tuple(int(c) for c in _instance_colors(np.array([[7]]))[0, 0])
    assert id7 != (255, 255, 255) and id7 in colours, (id7, len(colours))
    assert (ids_tile.reshape(-1, 3) == id7).all(axis=1).sum() > 100


def _links(html: str) -> list[str]:
    return re.findall(r'(?:src|href)="([^"]+)"', html)


def _chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if shutil.which(name):
            return shutil.which(name)
    pytest.skip("no headless Chromium (Debian package 'chromium'; .ci/run installs it)")


def test_gallery_opens_in_headless_chromium_and_links_exist(dataset, tmp_path):
    assert main(["show", str(dataset)]) == 0
    index = dataset / "show" / "index.html"
    html = index.read_text()
    links = _links(html)
    # two models: a grid thumbnail linking to its sheet, and the table's link to the sheet
    assert len(links) == 6
    for link in links:
        assert not link.startswith(("/", "http")) and (index.parent / link).is_file(), link
    assert "points_bin" in html and "failed" in html and "nothing to render" in html
    summary = json.loads((dataset / "summary.json").read_text())
    assert f"<td>{summary['models_done']}</td>" in html
    assert "All runs (manifests)" in html and "Last run (summary.json)" in html
    shot = tmp_path / "shot.png"
    run = subprocess.run(
        [_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         f"--user-data-dir={tmp_path / 'profile'}", f"--screenshot={shot}",
         "--window-size=1200,1600", index.as_uri()],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert shot.is_file(), run.stderr[-2000:]
    image = cv2.imread(str(shot))
    assert image.shape[:2] == (1600, 1200)
    colours = np.unique(image.reshape(-1, 3), axis=0)
    assert image.std() > 10 and len(colours) > 50, "the screenshot is blank"
    # The thumbnails were drawn: turbo-coloured depth pixels appear on the page.
    hsv = cv2.cvtColor(image, cv2.COLOR_BGR2HSV)
    assert (hsv[..., 1] > 150).sum() > 500


def test_webdataset_of_a_dataset_reads_every_view(dataset):
    wds = pytest.importorskip("webdataset")
    manifest = json.loads((dataset / "webdataset" / "manifest.json").read_text())
    urls = [str(dataset / "webdataset" / s["file"]) for s in manifest["shards"]]
    samples = list(wds.WebDataset(urls, shardshuffle=False).decode())
    ids = sorted(p.name for p in (dataset / "models").iterdir())
    assert len(ids) == 2 and [s["__key__"] for s in samples] == [
        f"{i.replace('.', '_')}-{n}" for i in ids for n in ("0000", "0001")
    ]
    for s in samples:
        v = npz(dataset / "models" / s["json"]["model"], s["json"]["view"])
        np.testing.assert_array_equal(s["depth.npy"], v["depth"])


def test_export_a_dataset_per_model(dataset, tmp_path):
    pycolmap = pytest.importorskip("pycolmap")
    out = tmp_path / "x"
    assert main(["export", "colmap,png16", str(dataset), "--out", str(out)]) == 0
    ids = sorted(p.name for p in (dataset / "models").iterdir())
    assert sorted(p.name for p in out.iterdir()) == ids
    for mid in ids:
        rec = pycolmap.Reconstruction(str(out / mid / "sparse" / "0"))
        assert rec.num_images() == 2 and rec.num_points3D() > 0
        assert (out / mid / "png16" / "0001.png").is_file()


def test_gallery_of_a_resumed_dataset_summarises_every_run(dataset, tmp_path, capsys):
    """summary.json holds only the last run; the gallery's totals come from the manifests,
    and each model's thumbnail is one compact row of its sheet."""
    copy = tmp_path / "ds"
    shutil.copytree(dataset, copy, ignore=shutil.ignore_patterns("show"))
    summary = json.loads((copy / "summary.json").read_text())
    # What a re-run that found everything done writes.
    summary.update(models_done=0, models_failed=0, views=0,
                   skipped_already_done=summary["models_done"])  # fmt: skip
    (copy / "summary.json").write_text(json.dumps(summary))
    capsys.readouterr()
    assert main(["show", str(copy), "--views", "2"]) == 0
    line = capsys.readouterr().out.strip().splitlines()[-1]
    assert line == f"wrote 2 contact sheets in {copy / 'show' / 'models'} and gallery " + str(
        copy / "show" / "index.html"
    )
    html = (copy / "show" / "index.html").read_text()
    totals = html.split("All runs (manifests)")[1].split("</table>")[0]
    ids = sorted(p.name for p in (copy / "models").iterdir())
    views = sum(len(list((copy / "models" / i / "views").glob("*.npz"))) for i in ids)
    assert "<th>done</th><td>2</td>" in totals and "<th>failed</th><td>1</td>" in totals
    assert f"<th>views</th><td>{views}</td>" in totals and views == 4
    for mid in ids:
        sheet = cv2.imread(str(copy / "show" / "models" / f"{mid}.png"))
        thumb = cv2.imread(str(copy / "show" / "thumbs" / f"{mid}.png"))
        # Two rows in the sheet, one in the thumbnail: under 60 % of the sheet's aspect.
        assert thumb.shape[0] / thumb.shape[1] < 0.6 * sheet.shape[0] / sheet.shape[1]
