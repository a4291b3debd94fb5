"""Every default the help shows is the default the code uses: the CLI's option defaults
against the dataclasses the commands fill (RenderSettings, ViewPlan, LayoutOptions,
DatasetOptions), and the defaults that depend on the command (scene's sampler, --views)."""

from __future__ import annotations

import dataclasses
import re

import pytest
import rich_click as click
from click.testing import CliRunner

from blendtruth.cli.main import cli
from blendtruth.dataset.runner import DatasetOptions
from blendtruth.multiview import ViewPlan
from blendtruth.passes import DEFAULT_PASSES, parse_passes
from blendtruth.scenes.placement import LayoutOptions
from blendtruth.settings import RenderSettings

# option name (without --) -> (dataclass, field) for options that fill a field one to one.
FIELDS = {
    **{n: (RenderSettings, n) for n in ("width", "height", "samples", "engine", "device",
                                        "seed", "threads", "truth", "alpha_threshold")},
    "fov": (ViewPlan, "fov_deg"),
    "fill": (ViewPlan, "fill"),
    "elevation": (ViewPlan, "elevation_deg"),
    "radius": (ViewPlan, "radius"),
    "objects": (LayoutOptions, "objects"),
    "upright": (LayoutOptions, "upright"),
    "ground": (LayoutOptions, "ground"),
    "ground_size": (LayoutOptions, "ground_size"),
    "ground_in_truth": (LayoutOptions, "ground_in_truth"),
}  # fmt: skip


def _default(cls, name):
    f = {f.name: f for f in dataclasses.fields(cls)}[name]
    return f.default_factory() if f.default is dataclasses.MISSING else f.default


def _help(*args: str) -> str:
    result = CliRunner().invoke(cli, [*args, "--help"], terminal_width=200)
    assert result.exit_code == 0, result.output
    return re.sub(r"[\s│╭╮╰╯─]+", " ", result.output)


@pytest.mark.parametrize("command", ["render", "dataset", "scene"])
def test_option_defaults_equal_the_code_defaults(command):
    cmd = cli.commands[command]
    ctx = click.Context(cmd)
    params = {p.name: p for p in cmd.params}
    checked = 0
    for name, (cls, field) in FIELDS.items():
        if name in params:
            assert params[name].get_default(ctx) == _default(cls, field), (command, name)
            checked += 1
    assert checked >= 6
    assert parse_passes(params["passes_text"].get_default(ctx)) == DEFAULT_PASSES
    text = _help(command)
    # --views says its default in words: 8 (ViewPlan), 1 for the tutorial scene.
    assert "(default 8;" in text and _default(ViewPlan, "views") == 8
    assert "--sampler" in text and f"{_default(ViewPlan, 'sampler')};" in text


def test_dataset_run_defaults_and_the_retry_rule():
    cmd = cli.commands["dataset"]
    ctx = click.Context(cmd)
    params = {p.name: p for p in cmd.params}
    for name in ("retries", "timeout", "recycle_after"):
        assert params[name].get_default(ctx) == _default(DatasetOptions, name), name
    text = _help("dataset")
    assert "not after a timeout, the memory limit or a bad file" in text


def test_scene_sampler_default_is_the_hemisphere_over_a_ground():
    from blendtruth.cli.scene import layout_from_options, pop_layout

    text = _help("scene")
    assert "`scene` with a ground: hemisphere" in text
    command = cli.commands["scene"]
    ctx = command.make_context("scene", ["a.obj"])
    with ctx:
        o = dict(ctx.params)
        lay = pop_layout(o)
        layout_from_options(lay, o)
    assert lay["ground"] is True and o["sampler"] == "hemisphere"


def test_help_names_no_missing_docs_and_groups_options():
    for command in ("render", "dataset", "scene", "export", "check"):
        text = _help(command)
        assert "docs/" not in text, command
    text = _help("render")
    for panel in ("Output", "Cameras", "Ground truth", "Scene and light", "RGB render"):
        assert f"─ {panel} " in CliRunner().invoke(cli, ["render", "--help"]).output, panel
