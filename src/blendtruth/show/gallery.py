"""``blendtruth show``: contact sheets and a static ``index.html`` that opens from disk.

Render folder -> ``OUT/contact_sheet.png`` (+ ``.json``: each row's depth range, colour
bar ticks and where the bar is) and ``OUT/index.html``. Dataset folder -> per model
``OUT/models/<id>.png`` (+ ``.json``) and ``OUT/thumbs/<id>.png``, and ``OUT/index.html``:
totals over every model in the manifests (all runs, resumed ones included), the figures
of ``summary.json`` (the last run), a compact grid of thumbnails (each model's first view,
linking to its sheet) and every model's status from the manifests (done, failed with its
reason, attempts, seconds, warnings). All links are relative, so the folder can be copied
and opened with no server.
"""

from __future__ import annotations

import html
import json
import os
from collections.abc import Callable
from pathlib import Path

import cv2

from blendtruth.exports.source import (
    ITEM_GROUPS,
    RenderFolder,
    dataset_items,
    is_dataset_folder,
    is_render_folder,
    item_order,
    read_json,
    render_folder,
    render_folders,
)
from blendtruth.layout import DatasetLayout
from blendtruth.show.contact import contact_sheet, pick_views
from blendtruth.writers.atomic import write_bytes
from blendtruth.writers.png import write_png

THUMB_W = 320
_CSS = (
    "body{font-family:sans-serif;margin:1.5em}table{border-collapse:collapse}"
    "td,th{border:1px solid #ccc;padding:4px 8px;text-align:left;vertical-align:top}"
    ".failed{background:#fdd}.done{background:#efe}img{max-width:320px}"
    ".grid{display:flex;flex-wrap:wrap;gap:6px}figure{margin:0}figcaption{font-size:small}"
)


def write_sheet(folder: RenderFolder, png: Path, views: int) -> list[dict]:
    """The contact sheet of ``folder`` at ``png`` (and its figures beside it as .json)."""
    rows = [(n, folder.arrays(n)) for n in pick_views(folder.names, views)]
    sheet, info = contact_sheet(rows)
    png.parent.mkdir(parents=True, exist_ok=True)
    write_png(png, sheet)
    write_bytes(png.with_suffix(".json"), (json.dumps(info, indent=2) + "\n").encode())
    return info


def show(
    path: Path,
    out: Path | None = None,
    views: int = 4,
    on_model: Callable[[str], None] | None = None,
) -> list[Path]:
    """Write the pictures of the render or dataset folder ``path`` into ``out`` (default
    ``path/show``). Returns the files written (index.html last)."""
    path = Path(path)
    out = Path(out) if out is not None else path / "show"
    out.mkdir(parents=True, exist_ok=True)
    if is_render_folder(path):
        folder = render_folder(path)
        write_sheet(folder, out / "contact_sheet.png", views)
        body = f"<h1>{html.escape(path.name)}</h1><p>{len(folder.names)} views</p>"
        body += '<p><a href="contact_sheet.png"><img src="contact_sheet.png" alt="sheet"></a></p>'
        _write_html(out / "index.html", path.name, body)
        return [out / "contact_sheet.png", out / "contact_sheet.json", out / "index.html"]
    if not is_dataset_folder(path):
        render_folders(path)  # raises the one line that says what the folder is instead
    return _dataset(path, out, views, on_model)


def _dataset(path: Path, out: Path, views: int, on_model) -> list[Path]:
    from blendtruth.dataset.manifest import read_records

    records = read_records(path)
    lay = DatasetLayout(path)
    summary = read_json(lay.summary_json) if lay.summary_json.is_file() else {}
    written = []
    rows = []
    items = {p.name: p for p in dataset_items(path)}
    group = next((g for g in ITEM_GROUPS if lay.group_dir(g).is_dir()), "models")
    for mid in sorted(set(records) | set(items), key=item_order):
        rec = records.get(mid, {})
        folder_path = items.get(mid, lay.item(group, mid).root)
        cells = {"id": mid, "status": rec.get("status", "unrecorded"), "rec": rec, "img": None}
        if is_render_folder(folder_path):
            folder = render_folder(folder_path)
            sheet = out / "models" / f"{mid}.png"
            info = write_sheet(folder, sheet, views)
            thumb = out / "thumbs" / f"{mid}.png"
            thumb.parent.mkdir(parents=True, exist_ok=True)
            # The thumbnail is the sheet's titles and first view only: a compact grid cell.
            tile = info[0]["depth_tile"]
            image = cv2.imread(str(sheet))[: tile["y"] + tile["height"], :, ::-1]
            scale = THUMB_W / image.shape[1]
            size = (THUMB_W, max(1, round(image.shape[0] * scale)))
            write_png(thumb, cv2.resize(image, size, interpolation=cv2.INTER_AREA))
            cells.update(img=thumb, sheet=sheet, views=len(folder.names))
            written += [sheet, sheet.with_suffix(".json"), thumb]
        rows.append(cells)
        if on_model:
            on_model(mid)
    body = f"<h1>{html.escape(path.name)}</h1>" + _manifest_table(rows)
    body += _summary_table(summary)
    body += "<h2>Views</h2><div class=grid>" + "".join(
        f'<figure><a href="{_rel(r["sheet"], out)}"><img src="{_rel(r["img"], out)}" '
        f'alt="{_e(r["id"])}"></a><figcaption>{_e(r["id"])}</figcaption></figure>'
        for r in rows
        if r["img"] is not None
    )
    body += "</div>"
    failures = [r for r in rows if r["status"] == "failed"]
    body += f"<h2>Failures ({len(failures)})</h2>"
    if failures:
        body += "<table><tr><th>model</th><th>source</th><th>reason</th></tr>"
        for r in failures:
            rec = r["rec"]
            body += (
                f"<tr class=failed><td>{_e(r['id'])}</td><td>{_e(rec.get('source', ''))}</td>"
                f"<td>{_e(rec.get('reason', ''))}</td></tr>"
            )
        body += "</table>"
    body += f"<h2>Models ({len(rows)})</h2><table><tr><th>model</th><th>status</th>"
    body += "<th>views</th><th>seconds</th><th>attempts</th><th>warnings</th><th>sheet</th></tr>"
    for r in rows:
        rec = r["rec"]
        img = ""
        if r["img"] is not None:
            sheet_rel = _rel(r["sheet"], out)
            img = f'<a href="{sheet_rel}">sheet</a>'
        body += (
            f"<tr class={_e(r['status'])}><td>{_e(r['id'])}</td><td>{_e(r['status'])}"
            f"{'<br>' + _e(rec['reason']) if rec.get('reason') else ''}</td>"
            f"<td>{r.get('views', '')}</td><td>{_e(rec.get('seconds', ''))}</td>"
            f"<td>{_e(rec.get('attempts', ''))}</td>"
            f"<td>{'<br>'.join(_e(w) for w in rec.get('warnings', []))}</td><td>{img}</td></tr>"
        )
    body += "</table>"
    _write_html(out / "index.html", path.name, body)
    return written + [out / "index.html"]


def _manifest_table(rows: list[dict]) -> str:
    """Every model of every run, from the manifests (summary.json holds the last run)."""
    done = [r["rec"] for r in rows if r["status"] == "done"]
    figures = {
        "models": len(rows),
        "done": len(done),
        "failed": sum(r["status"] == "failed" for r in rows),
        "unrecorded": sum(r["status"] == "unrecorded" for r in rows),
        "views": sum(int(rec.get("views", 0)) for rec in done),
        "seconds": round(sum(float(rec.get("seconds", 0.0)) for rec in done), 1),
    }
    cells = "".join(f"<tr><th>{_e(k)}</th><td>{_e(v)}</td></tr>" for k, v in figures.items())
    return f"<h2>All runs (manifests)</h2><table>{cells}</table>"


def _summary_table(summary: dict) -> str:
    if not summary:
        return "<p>no summary.json</p>"
    keys = ["models_total", "models_done", "models_failed", "skipped_already_done", "views",
            "seconds", "models_per_second", "views_per_second", "workers", "executor",
            "shard"]  # fmt: skip
    cells = "".join(
        f"<tr><th>{_e(k)}</th><td>{_e(summary[k])}</td></tr>" for k in keys if k in summary
    )
    return f"<h2>Last run (summary.json)</h2><table>{cells}</table>"


def _e(value) -> str:
    return html.escape(str(value))


def _rel(p: Path, base: Path) -> str:
    return html.escape(Path(os.path.relpath(p, base)).as_posix(), quote=True)


def _write_html(path: Path, title: str, body: str) -> None:
    page = (
        f'<!DOCTYPE html>\n<html><head><meta charset="utf-8"><title>{_e(title)}</title>'
        f"<style>{_CSS}</style></head><body>\n{body}\n</body></html>\n"
    )
    write_bytes(path, page.encode())
