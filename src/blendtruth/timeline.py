"""Time as one more axis of a render: which frames, and their times in seconds.

A *frame* is an instant of the scene's timeline (Blender's integer frame number); a *view*
is a frame seen by one camera. ``time`` (seconds) = (frame - first frame of the request) /
fps, so the first requested frame is at time 0. ``--frames START:END[:STEP]`` includes END
(as Blender's frame ranges do). Pure Python: no bpy.
"""

from __future__ import annotations

from dataclasses import dataclass

from blendtruth.errors import BlendtruthError

# A stated cap: more frames than this in one render is refused (split the range).
MAX_FRAMES = 10_000


@dataclass(frozen=True)
class Timeline:
    """The requested frames (ascending ints) and the frame rate (frames per second)."""

    frames: tuple[int, ...]
    fps: float

    def time(self, frame: int) -> float:
        """Seconds since the first requested frame."""
        return (frame - self.frames[0]) / self.fps


def parse_frames(text: str, fps: float = 24.0) -> Timeline:
    """A :class:`Timeline` from ``START:END[:STEP]`` (or one frame ``N``), or one clear line."""
    parts = str(text).split(":")
    try:
        numbers = [int(p) for p in parts]
    except ValueError:
        raise BlendtruthError(
            f"--frames {text!r}: expected START:END[:STEP] with whole numbers, e.g. 1:48 or 1:48:2"
        ) from None
    if len(numbers) == 1:
        numbers = [numbers[0], numbers[0]]
    if len(numbers) not in (2, 3):
        raise BlendtruthError(f"--frames {text!r}: expected START:END[:STEP]")
    start, end = numbers[0], numbers[1]
    step = numbers[2] if len(numbers) == 3 else 1
    if step < 1:
        raise BlendtruthError(f"--frames {text!r}: STEP must be >= 1, got {step}")
    if end < start:
        raise BlendtruthError(f"--frames {text!r}: END ({end}) is before START ({start})")
    count = (end - start) // step + 1
    if count > MAX_FRAMES:
        raise BlendtruthError(
            f"--frames {text!r}: {count} frames is more than the cap of {MAX_FRAMES} per render"
        )
    if not (fps > 0 and fps < 10_000):
        raise BlendtruthError(f"--fps must be between 0 and 10000 (exclusive), got {fps}")
    return Timeline(tuple(range(start, end + 1, step)), float(fps))


def check_range(timeline: Timeline, animated: tuple[int, int] | None, source: str) -> bool:
    """Whether ``source`` moves over the timeline: True when it has an animation whose frame
    range (``animated``: first, last) holds every requested frame; False for a file with no
    animation (a static scene); a request outside the range is one clear line."""
    if animated is None:
        return False
    lo, hi = animated
    first, last = timeline.frames[0], timeline.frames[-1]
    if first < lo or last > hi:
        raise BlendtruthError(
            f"{source}: --frames {first}:{last} is outside the file's animation (frames {lo}:{hi})"
        )
    return True
