"""Distorted lenses in Cycles: a Custom (OSL) camera that casts each sample along the exact
ray of the lens model (:mod:`blendtruth.geometry.lens_distortion`), so RGB is rendered
through the true distorted rays, not warped from a pinhole image afterwards.

Facts this relies on (bpy 4.5, measured): the camera shader's raster position runs over
[0, 1]² with y from the bottom row up; its ray frame is x right, y up, z forward; Blender
applies the camera's lens shift to the raster position (so shift must be 0); and the pip
wheel's Cycles compiles OSL only when its bundled ``oslquery`` module is importable, which
lives in the wheel's own ``python/lib/python3.11/site-packages``, not on ``sys.path``
(without it the shader silently fails and renders black). A ray the model has no answer
for (beyond its fold) gets throughput 0: Cycles skips it (transparent / background).
"""

from __future__ import annotations

import os
import sys

from blendtruth.blender._bpy import bpy
from blendtruth.errors import BlendtruthError

NEWTON_STEPS = 30


def _ensure_oslquery() -> None:
    # bpy/<version>/scripts/modules/bpy/__init__.py -> bpy/<version>/python/lib/.../site-packages
    version_dir = os.path.normpath(os.path.join(os.path.dirname(bpy.__file__), "..", "..", ".."))
    site = os.path.join(version_dir, "python", "lib", "python3.11", "site-packages")
    if os.path.isdir(os.path.join(site, "oslquery")) and site not in sys.path:
        sys.path.append(site)


def _f(x: float) -> str:
    return repr(float(x))


def osl_source(model) -> str:
    """The OSL camera shader of ``model`` (an OpenCV or OpenCVFisheye camera model)."""
    k = model.intrinsics
    head = (
        "shader blendtruth_lens(output point position = 0, output vector direction = 0,\n"
        "                       output color throughput = 1) {\n"
        "    point r = camera_shader_raster_position();\n"
        f"    float xd = (r[0] * {_f(k.width)} - {_f(k.cx)}) / {_f(k.fx)};\n"
        f"    float yd = ((1.0 - r[1]) * {_f(k.height)} - {_f(k.cy)}) / {_f(k.fy)};\n"
        "    position = point(0, 0, 0);\n"
    )
    if model.name == "opencv":
        k1, k2, p1, p2, k3, k4, k5, k6 = (_f(c) for c in model.distortion)
        body = f"""    float x = xd; float y = yd; float ok = 1.0;
    for (int i = 0; i < {NEWTON_STEPS}; i++) {{
        float r2 = x * x + y * y;
        float num = 1 + r2 * ({k1} + r2 * ({k2} + r2 * {k3}));
        float den = 1 + r2 * ({k4} + r2 * ({k5} + r2 * {k6}));
        float g = num / den;
        float dg = (({k1} + r2 * (2 * {k2} + 3 * {k3} * r2)) * den
                    - ({k4} + r2 * (2 * {k5} + 3 * {k6} * r2)) * num) / (den * den);
        float ex = x * g + 2 * {p1} * x * y + {p2} * (r2 + 2 * x * x) - xd;
        float ey = y * g + {p1} * (r2 + 2 * y * y) + 2 * {p2} * x * y - yd;
        float a = g + 2 * x * x * dg + 2 * {p1} * y + 6 * {p2} * x;
        float b = 2 * x * y * dg + 2 * {p1} * x + 2 * {p2} * y;
        float d = g + 2 * y * y * dg + 6 * {p1} * y + 2 * {p2} * x;
        float det = a * d - b * b;
        if (det <= 0) {{ ok = 0.0; break; }}
        x -= (d * ex - b * ey) / det;
        y -= (a * ey - b * ex) / det;
    }}
    if (hypot(x, y) >= {_f(model.fold_radius)}) ok = 0.0;
    direction = normalize(vector(x, -y, 1.0));
    throughput = color(ok);
}}
"""
    elif model.name == "opencv-fisheye":
        k1, k2, k3, k4 = (_f(c) for c in model.distortion)
        body = f"""    float rd = hypot(xd, yd); float ok = 1.0;
    float t = min(rd, {_f(model.max_theta)});
    for (int i = 0; i < {NEWTON_STEPS}; i++) {{
        float t2 = t * t;
        float td = t * (1 + t2 * ({k1} + t2 * ({k2} + t2 * ({k3} + {k4} * t2))));
        float dt = 1 + t2 * (3 * {k1} + t2 * (5 * {k2} + t2 * (7 * {k3} + 9 * {k4} * t2)));
        t = clamp(t - (td - rd) / dt, 0.0, {_f(model.max_theta)});
    }}
    if (t >= {_f(model.max_theta)}) ok = 0.0;
    float s = rd > 0 ? sin(t) / rd : 1.0;
    direction = normalize(vector(s * xd, -s * yd, cos(t)));
    throughput = color(ok);
}}
"""
    else:
        raise BlendtruthError(f"no OSL camera for the {model.name!r} camera model")
    return head + body


def apply_lens_camera(obj, model) -> None:
    """Make the camera object ``obj`` a Custom (OSL) camera casting ``model``'s rays; the
    caller sets the pose, the resolution (``model.intrinsics``) and the clip range."""
    _ensure_oslquery()
    name = "blendtruth_lens.osl"
    text = bpy.data.texts.get(name) or bpy.data.texts.new(name)
    text.clear()
    text.write(osl_source(model))
    data = obj.data
    data.shift_x = data.shift_y = 0.0  # Blender shifts the custom camera's raster too
    data.type = "CUSTOM"
    data.custom_mode = "INTERNAL"
    data.custom_shader = text
    if not data.custom_bytecode:
        raise BlendtruthError(
            "Cycles could not compile the lens camera's OSL shader (is this bpy built with "
            "OSL?); distorted RGB needs it"
        )
    render = bpy.context.scene.render
    render.resolution_x, render.resolution_y = model.intrinsics.width, model.intrinsics.height
    render.resolution_percentage = 100
    render.pixel_aspect_x = render.pixel_aspect_y = 1.0
