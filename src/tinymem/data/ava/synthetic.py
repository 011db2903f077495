"""A synthetic long-video world, written as real AVA-format files, in which memory is necessary.

Each video is a run of episodes, one keyframe per second. In an episode's *cue* second a person
picks up a small object of a random colour, action "pick up (the <colour> object)"
(:meth:`SyntheticSpec.pick_up_id`); in the following ``dependent_clips`` seconds the person
holds a neutral white object and the action is "use (the <colour> object)"
(:meth:`SyntheticSpec.use_id`). The dependent seconds' pixels and captions do not depend on the
colour, so a model can label them only by remembering the cue.

The cue's own label names the colour, as an AVA label names what a person does: training the
cue clips teaches the features of the person box to encode the colour, so every kind of memory
(captions, region features, dense keys/values) has something to carry to the dependent seconds.

Layout under ``out_dir`` (see :func:`generate`)::

    videos/<video_id>.mp4                        H.264, file time 0 = second video_start_sec
    annotations/{train,val}.csv                  video_id,timestamp,x1,y1,x2,y2,action_id,person_id
    annotations/action_list.pbtxt                item { name: "..." id: N }
    annotations/val_proposals.csv                video_id,timestamp,x1,y1,x2,y2,,score
    annotations/val_excluded_timestamps.csv      empty
    captions/<video_id>.jsonl                    {"frame": i, "caption": "..."} for every frame
    manifest.json                                written last: generator version and spec
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tinymem.data.ava.formats import (
    AVA_EVALUATED_IDS,
    AVA_NUM_ACTIONS,
    AvaBox,
    Box,
    Keyframes,
    write_annotations,
    write_label_map,
    write_proposals,
)
from tinymem.data.synthetic_spec import WorldSpec
from tinymem.data.video import write_video
from tinymem.paths import PathType

logger = logging.getLogger(__name__)

Rect = tuple[int, int, int, int]  # x0, y0, x1, y1 in pixels, half-open
RGB = tuple[int, int, int]

GENERATOR_VERSION = 2  # bump when the generated content changes: ensure_synthetic regenerates
FIRST_ACTION_ID = 1  # AVA-style ids: pick up <colour> 1..n, then use <colour> n+1..2n
PERSON_ID = 0
SPLIT_STREAMS = {"train": 0, "val": 1}  # seed words: splits never share random streams
PROPOSAL_STREAM = 1  # extra seed word of the per-video proposal jitter stream

COLOUR_RGB: dict[str, RGB] = {
    "red": (220, 30, 30),
    "green": (30, 180, 50),
    "blue": (30, 70, 230),
    "yellow": (240, 220, 30),
    "cyan": (30, 220, 230),
    "magenta": (220, 40, 200),
    "orange": (245, 140, 20),
    "purple": (130, 40, 190),
}
BODY_RGB: RGB = (70, 70, 80)  # grey clothes
HEAD_RGB: RGB = (225, 180, 140)  # skin
HELD_RGB: RGB = (235, 235, 235)  # the neutral object of dependent seconds, whatever the cue
BACKGROUND_LEVELS = (110, 170)  # muted background: a grey level in this range ...
BACKGROUND_TINT = 20  # ... plus a per-channel tint in [-tint, tint]
BACKGROUND_NOISE = 6  # static per-pixel texture in [-noise, noise]
MAX_SEED = 2**31

# geometry, as fractions of the frame size
BODY_WIDTH = 0.19
BODY_HEIGHT = 0.38
HEAD_SIZE = 0.14
OBJECT_SIZE = 0.16  # large enough for the tiny demo model to tell the cue colours apart
HAND_HEIGHT = 0.35  # hand (held object top) below the body top, as a fraction of body height
TABLE_GAP_PX = 2  # the picked-up object starts this far right of the body, at its bottom
MARGIN_PX = 1
DRIFT_PX = 1  # per-second random walk step of the person

PROPOSAL_JITTER = 0.04  # each proposal edge moves by up to this fraction of the box size
PROPOSAL_MIN_IOU = 0.85  # > 0.8 even after the CSV's 3-decimal rounding
PROPOSAL_TRIES = 100
PROPOSAL_SCORES = (0.9, 1.0)

CAPTION_CUE = "a person picks up a {colour} cup from the table"
CAPTION_DEPENDENT = "a person holds a cup"
CAPTION_STAND = "a person stands in a room"


def check_colours(colours: Sequence[str], minimum: int = 2) -> list[str]:
    """Problems with a colour list: unknown names, repeats, fewer than ``minimum``."""
    unknown = [c for c in colours if c not in COLOUR_RGB]
    if unknown or len(set(colours)) != len(colours) or len(colours) < minimum:
        return [f"colours must be >= {minimum} distinct names from {sorted(COLOUR_RGB)}"]
    return []


@dataclass(frozen=True)
class SyntheticSpec(WorldSpec):
    """Size and timing of the synthetic world (after ``seed``); the files are a function of it."""

    num_train_videos: int = 48
    num_val_videos: int = 16
    episodes_per_video: int = 3
    dependent_clips: int = 2  # clips after each cue clip whose label depends on the cue
    fps: int = 8
    frame_size: int = 64  # square frames, even
    video_start_sec: int = 900  # file time 0 is second 900, as in AVA's cut videos
    first_keyframe_sec: int = 902
    colours: tuple[str, ...] = ("red", "green", "blue", "yellow")

    list_fields = ("colours",)

    def problems(self) -> list[str]:
        """What keeps these values from making a valid world."""
        counts = dict.fromkeys(("num_train_videos", "num_val_videos", "dependent_clips", "seed"), 0)
        problems = self.below({**counts, "episodes_per_video": 1, "fps": 2})
        if self.frame_size < 32 or self.frame_size % 2:  # smaller frames cannot fit the scene
            problems.append("frame_size must be even and >= 32")
        if self.first_keyframe_sec <= self.video_start_sec:
            problems.append("first_keyframe_sec must be > video_start_sec")
        return problems + check_colours(self.colours)

    @property
    def keyframes(self) -> list[int]:
        """Keyframe seconds of every video: one per second, episodes back to back."""
        count = self.episodes_per_video * (1 + self.dependent_clips)
        return list(range(self.first_keyframe_sec, self.first_keyframe_sec + count))

    @property
    def num_frames(self) -> int:
        """Frames of every video: seconds video_start_sec .. last keyframe + 1."""
        return (self.keyframes[-1] + 1 - self.video_start_sec) * self.fps

    @property
    def num_seconds(self) -> int:
        """Content seconds of a video, including the half second after the last keyframe."""
        return self.keyframes[-1] + 2 - self.video_start_sec

    def pick_up_id(self, colour: str) -> int:
        """Action id of a cue second in which an object of this colour is picked up."""
        return FIRST_ACTION_ID + self.colours.index(colour)

    def use_id(self, colour: str) -> int:
        """Action id of the dependent seconds after a cue of this colour."""
        return FIRST_ACTION_ID + len(self.colours) + self.colours.index(colour)

    def label_names(self) -> dict[int, str]:
        """Action id -> name for the label map."""
        names = {self.pick_up_id(c): f"pick up (the {c} object)" for c in self.colours}
        names.update({self.use_id(c): f"use (the {c} object)" for c in self.colours})
        return names


DEFAULT_SPEC = SyntheticSpec()


@dataclass(frozen=True)
class VideoPlan:
    """Everything random about one video; pixels, labels and captions are functions of it."""

    video_id: str
    background: RGB
    texture_seed: int
    person_xy: tuple[tuple[int, int], ...]  # body top-left (pixels) per content second
    cue_colours: tuple[str, ...]  # one per episode


def plan_video(spec: SyntheticSpec, video_id: str, rng: np.random.Generator) -> VideoPlan:
    """Draw a video's background, person path and cue colours (colours drawn last)."""
    size = spec.frame_size
    geometry = _Geometry(size)
    level = int(rng.integers(*BACKGROUND_LEVELS, endpoint=True))
    tint = rng.integers(-BACKGROUND_TINT, BACKGROUND_TINT, size=3, endpoint=True)
    texture_seed = int(rng.integers(MAX_SEED))
    x_max = size - MARGIN_PX - geometry.reach
    y_max = size - MARGIN_PX - geometry.height
    x = int(rng.integers(MARGIN_PX, x_max, endpoint=True))
    y = int(rng.integers(MARGIN_PX, y_max, endpoint=True))
    steps = rng.integers(-DRIFT_PX, DRIFT_PX, size=(spec.num_seconds - 1, 2), endpoint=True)
    path = [(x, y)]
    for dx, dy in steps:
        x = min(max(x + int(dx), MARGIN_PX), x_max)
        y = min(max(y + int(dy), MARGIN_PX), y_max)
        path.append((x, y))
    colours = rng.integers(len(spec.colours), size=spec.episodes_per_video)
    return VideoPlan(
        video_id=video_id,
        background=tuple(int(v) for v in np.clip(level + tint, 0, 255)),
        texture_seed=texture_seed,
        person_xy=tuple(path),
        cue_colours=tuple(spec.colours[int(i)] for i in colours),
    )


class _Geometry:
    """Pixel sizes of the person and object for a frame size."""

    def __init__(self, size: int) -> None:
        self.body_w = round(BODY_WIDTH * size)
        self.body_h = round(BODY_HEIGHT * size)
        self.head = round(HEAD_SIZE * size)
        self.obj = round(OBJECT_SIZE * size)
        self.height = self.head + self.body_h  # person height
        self.reach = self.body_w + TABLE_GAP_PX + self.obj  # widest extent right of x

    def body(self, x: int, y: int) -> Rect:
        """Body rectangle of a person whose body top-left is (x, y + head)."""
        return x, y + self.head, x + self.body_w, y + self.height

    def head_rect(self, x: int, y: int) -> Rect:
        """Head square centred above the body."""
        left = x + (self.body_w - self.head) // 2
        return left, y, left + self.head, y + self.head

    def object_at(self, x: int, y: int, lift: float) -> Rect:
        """Object moving from the table (lift 0) into the hand (lift 1)."""
        hand_x = x + self.body_w - self.obj // 2
        hand_y = y + self.head + round(HAND_HEIGHT * self.body_h)
        table_x = x + self.body_w + TABLE_GAP_PX
        table_y = y + self.height - self.obj
        left = round(table_x + lift * (hand_x - table_x))
        top = round(table_y + lift * (hand_y - table_y))
        return left, top, left + self.obj, top + self.obj


def _second_role(spec: SyntheticSpec, second: int) -> tuple[str, int]:
    """("cue" | "dependent" | "stand", episode index or -1) of a content second."""
    offset = second - spec.first_keyframe_sec
    if offset < 0 or offset >= len(spec.keyframes):
        return "stand", -1
    episode, position = divmod(offset, 1 + spec.dependent_clips)
    return ("cue" if position == 0 else "dependent"), episode


def _frame_seconds(spec: SyntheticSpec) -> np.ndarray:
    """Content second of every frame: frames at file time in [k - 0.5, k + 0.5) show second k."""
    frames = np.arange(spec.num_frames)
    return spec.video_start_sec + (2 * frames + spec.fps) // (2 * spec.fps)  # [T]


def _frame_layout(spec: SyntheticSpec, plan: VideoPlan) -> list[tuple[int, int, str, int, Rect]]:
    """Per frame: person (x, y), role, episode and object rect (empty for "stand")."""
    geometry = _Geometry(spec.frame_size)
    seconds = _frame_seconds(spec)
    first_frame = {int(k): int(np.argmax(seconds == k)) for k in np.unique(seconds)}
    layout = []
    for f, second in enumerate(seconds.tolist()):
        x, y = plan.person_xy[second - spec.video_start_sec]
        role, episode = _second_role(spec, second)
        rect: Rect = (0, 0, 0, 0)
        if role == "cue":
            lift = (f - first_frame[second]) / (spec.fps - 1)
            rect = geometry.object_at(x, y, lift)
        elif role == "dependent":
            rect = geometry.object_at(x, y, 1.0)
        layout.append((x, y, role, episode, rect))
    return layout


def _fill(image: np.ndarray, rect: Rect, rgb: RGB) -> None:
    """Paint a rectangle of an [H, W, 3] image."""
    x0, y0, x1, y1 = rect
    image[y0:y1, x0:x1] = rgb


def render_video(spec: SyntheticSpec, plan: VideoPlan) -> np.ndarray:
    """Render a video's frames, uint8 [T, S, S, 3]; only cue seconds depend on the colours."""
    size = spec.frame_size
    geometry = _Geometry(size)
    texture = np.random.default_rng(plan.texture_seed).integers(
        -BACKGROUND_NOISE, BACKGROUND_NOISE, size=(size, size, 3), endpoint=True
    )
    background = np.clip(np.asarray(plan.background) + texture, 0, 255).astype(np.uint8)
    frames = np.repeat(background[None], spec.num_frames, axis=0)  # [T, S, S, 3]
    for image, (x, y, role, episode, rect) in zip(frames, _frame_layout(spec, plan), strict=True):
        _fill(image, geometry.body(x, y), BODY_RGB)
        _fill(image, geometry.head_rect(x, y), HEAD_RGB)
        if role == "cue":
            _fill(image, rect, COLOUR_RGB[plan.cue_colours[episode]])
        elif role == "dependent":
            _fill(image, rect, HELD_RGB)
    return frames


def _union(rects: list[Rect]) -> Rect:
    """Smallest rectangle containing all (non-empty) rects."""
    rects = [r for r in rects if r[2] > r[0] and r[3] > r[1]]
    return (
        min(r[0] for r in rects),
        min(r[1] for r in rects),
        max(r[2] for r in rects),
        max(r[3] for r in rects),
    )


def video_keyframes(spec: SyntheticSpec, plan: VideoPlan) -> Keyframes:
    """Ground truth: at each keyframe one person box (body, head, object) and its action."""
    geometry = _Geometry(spec.frame_size)
    layout = _frame_layout(spec, plan)
    keyframes: Keyframes = {}
    for second in spec.keyframes:
        x, y, role, episode, rect = layout[(second - spec.video_start_sec) * spec.fps]
        x0, y0, x1, y1 = _union([geometry.body(x, y), geometry.head_rect(x, y), rect])
        box: Box = tuple(v / spec.frame_size for v in (x0, y0, x1, y1))
        colour = plan.cue_colours[episode]
        action = spec.pick_up_id(colour) if role == "cue" else spec.use_id(colour)
        keyframes[(plan.video_id, second)] = [AvaBox(box=box, labels=[action], person_id=PERSON_ID)]
    return keyframes


def video_captions(spec: SyntheticSpec, plan: VideoPlan) -> list[str]:
    """Caption of every frame; only cue frames name the colour."""
    captions = []
    for _, _, role, episode, _ in _frame_layout(spec, plan):
        if role == "cue":
            captions.append(CAPTION_CUE.format(colour=plan.cue_colours[episode]))
        else:
            captions.append(CAPTION_DEPENDENT if role == "dependent" else CAPTION_STAND)
    return captions


def _iou(a: Box, b: Box) -> float:
    """Intersection over union of two x1,y1,x2,y2 boxes."""
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = w * h
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def jitter_proposals(keyframes: Keyframes, rng: np.random.Generator) -> Keyframes:
    """Person proposals: each GT box jittered (IoU > PROPOSAL_MIN_IOU), scored in [0.9, 1]."""
    proposals: Keyframes = {}
    for key, boxes in keyframes.items():
        proposals[key] = []
        for entry in boxes:
            x1, y1, x2, y2 = entry.box
            scale = np.array([x2 - x1, y2 - y1, x2 - x1, y2 - y1]) * PROPOSAL_JITTER
            jittered = entry.box
            for _ in range(PROPOSAL_TRIES):
                moved = np.clip(np.asarray(entry.box) + rng.uniform(-1, 1, 4) * scale, 0, 1)
                candidate: Box = tuple(float(v) for v in moved)
                if _iou(candidate, entry.box) > PROPOSAL_MIN_IOU:
                    jittered = candidate
                    break
            score = float(rng.uniform(*PROPOSAL_SCORES))
            proposals[key].append(AvaBox(box=jittered, labels=[], score=score))
    return proposals


def video_rng(spec: SyntheticSpec, split: str, index: int, *stream: int) -> np.random.Generator:
    """Independent random stream of one video (extra words select sub-streams)."""
    return np.random.default_rng([spec.seed, SPLIT_STREAMS[split], index, *stream])


def _manifest(spec: SyntheticSpec) -> dict:
    """JSON content of manifest.json for a spec."""
    return {"generator_version": GENERATOR_VERSION, "spec": dataclasses.asdict(spec)}


def generate(out_dir: PathType, spec: SyntheticSpec = DEFAULT_SPEC) -> Path:
    """Write the whole synthetic dataset under out_dir (manifest last) and return out_dir."""
    out = Path(out_dir)
    manifest = out / "manifest.json"
    manifest.unlink(missing_ok=True)  # an interrupted generation must be redone
    dirs = {name: out / name for name in ("videos", "annotations", "captions")}
    for path in dirs.values():
        path.mkdir(parents=True, exist_ok=True)
    for stale in [*dirs["videos"].glob("syn_*.mp4"), *dirs["captions"].glob("syn_*.jsonl")]:
        stale.unlink()
    counts = {"train": spec.num_train_videos, "val": spec.num_val_videos}
    for split, count in counts.items():
        ground_truth: Keyframes = {}
        proposals: Keyframes = {}
        for index in range(count):
            video_id = f"syn_{split}_{index:03d}"
            plan = plan_video(spec, video_id, video_rng(spec, split, index))
            write_video(dirs["videos"] / f"{video_id}.mp4", render_video(spec, plan), spec.fps)
            keyframes = video_keyframes(spec, plan)
            ground_truth.update(keyframes)
            if split == "val":
                rng = video_rng(spec, split, index, PROPOSAL_STREAM)
                proposals.update(jitter_proposals(keyframes, rng))
            lines = [
                json.dumps({"frame": frame, "caption": caption}) + "\n"
                for frame, caption in enumerate(video_captions(spec, plan))
            ]
            (dirs["captions"] / f"{video_id}.jsonl").write_text("".join(lines))
        write_annotations(dirs["annotations"] / f"{split}.csv", ground_truth)
        if split == "val":
            write_proposals(dirs["annotations"] / "val_proposals.csv", proposals)
    (dirs["annotations"] / "val_excluded_timestamps.csv").write_text("")
    write_label_map(dirs["annotations"] / "action_list.pbtxt", spec.label_names())
    manifest.write_text(json.dumps(_manifest(spec), indent=2) + "\n")
    logger.info("wrote synthetic dataset to %s", out)
    return out


def ensure_synthetic(out_dir: PathType, spec: SyntheticSpec = DEFAULT_SPEC) -> Path:
    """Reuse out_dir when its manifest records this spec, else (re)generate it."""
    out = Path(out_dir)
    manifest = out / "manifest.json"
    try:
        recorded = json.loads(manifest.read_text())
    except (OSError, ValueError):
        recorded = None
    if recorded == json.loads(json.dumps(_manifest(spec))):
        logger.info("reusing synthetic dataset in %s", out)
        return out
    return generate(out, spec)


# ---------------------------------------------------------------------------------------------
# An AVA-sized input for timing the metric (not part of the demo world)

AVA_KEYFRAMES_PER_VIDEO = 897  # seconds 902..1798
METRIC_BENCH_PERSONS = (1, 4)  # groundtruth persons per keyframe, inclusive range
METRIC_BENCH_LABELS = (1, 3)  # action labels per person, inclusive range
METRIC_BENCH_EXCLUDED = 0.01  # fraction of keyframes in the excluded-timestamps file


def write_metric_benchmark(
    out_dir: PathType,
    num_keyframes: int = 10_000,
    detections_per_keyframe: int = 200,
    seed: int = 0,
) -> dict[str, Path]:
    """Write an AVA-val-sized evaluation input in the real formats; returns the file paths.

    Each keyframe has 1-4 groundtruth persons with 1-3 of the 80 actions; the detection file has
    ``detections_per_keyframe`` rows per keyframe (jittered groundtruth boxes plus a random
    box, each with every action, random scores with six decimals). The label map lists the 60
    evaluated classes; 1% of the keyframes are excluded. Keys: groundtruth, detections,
    label_map, excluded.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    gt_lines, det_lines, excluded = [], [], []
    rows_left = num_keyframes * detections_per_keyframe
    for k in range(num_keyframes):
        video = f"bench{k // AVA_KEYFRAMES_PER_VIDEO:04d}"
        key = f"{video},{902 + k % AVA_KEYFRAMES_PER_VIDEO:04d}"
        persons = int(rng.integers(METRIC_BENCH_PERSONS[0], METRIC_BENCH_PERSONS[1] + 1))
        corner = rng.uniform(0.0, 0.6, size=(persons + 1, 2))
        boxes = np.concatenate([corner, corner + rng.uniform(0.1, 0.4, (persons + 1, 2))], 1)
        for person, box in enumerate(boxes[:persons]):
            text = ",".join(f"{v:.3f}" for v in box)
            count = int(rng.integers(METRIC_BENCH_LABELS[0], METRIC_BENCH_LABELS[1] + 1))
            for action in rng.choice(AVA_NUM_ACTIONS, count, replace=False) + 1:
                gt_lines.append(f"{key},{text},{action},{person}\n")
        jittered = np.clip(boxes + rng.normal(0.0, 0.02, boxes.shape), 0.0, 1.0)
        rows = rows_left // (num_keyframes - k)
        rows_left -= rows
        box_index = np.arange(rows) // AVA_NUM_ACTIONS % len(jittered)
        scores = rng.random(rows)
        for i in range(rows):
            x1, y1, x2, y2 = jittered[box_index[i]]
            det_lines.append(
                f"{key},{x1:.3f},{y1:.3f},{x2:.3f},{y2:.3f},{i % AVA_NUM_ACTIONS + 1},"
                f"{scores[i]:.6f}\n"
            )
        if rng.random() < METRIC_BENCH_EXCLUDED:
            excluded.append(key + "\n")
    paths = {
        "groundtruth": out / "groundtruth.csv",
        "detections": out / "detections.csv",
        "label_map": out / "label_map.pbtxt",
        "excluded": out / "excluded_timestamps.csv",
    }
    paths["groundtruth"].write_text("".join(gt_lines))
    paths["detections"].write_text("".join(det_lines))
    paths["excluded"].write_text("".join(excluded))
    write_label_map(paths["label_map"], {i: f"action {i}" for i in AVA_EVALUATED_IDS})
    return paths
