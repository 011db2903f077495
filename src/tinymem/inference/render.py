"""What a user looks at: an annotated MP4 (PyAV) and a PNG timeline of action scores (PIL)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from tinymem.inference.results import SecondResult
from tinymem.paths import PathType


def _palette(colours: str) -> tuple[tuple[int, ...], ...]:
    """RGB triples of space-separated hex colours ("e6194b 3cb44b" -> (230, 25, 75), ...)."""
    return tuple(tuple(bytes.fromhex(colour)) for colour in colours.split())


CODEC = "libx264"
PIXEL_FORMAT = "yuv420p"
ENCODER_OPTIONS = {"crf": "20", "preset": "veryfast"}
MAX_FPS_DENOMINATOR = 1001  # NTSC rates (30000/1001) stay exact
# box colours, one per person slot
PALETTE = _palette("e6194b 3cb44b ffe119 0082c8 f58230 911eb4 46f0f0 f032e6")
# timeline line colours, one per plotted class: none of them is a box colour above, so a line's
# colour never suggests the person whose box has it
CLASS_PALETTE = _palette("800000 000080 808000 008080 aa6e28 000000 808080 6e3c96")
TEXT_RGB = (255, 255, 255)
STRIP_RGB = (24, 24, 28)
LABEL_BACKGROUND = (0, 0, 0)
FONT_FRACTION = 0.045  # font size as a fraction of the video height
STRIP_LINES = 4  # memory entries listed in the strip (most attended first)
LINE_SPACING = 1.3
BOX_WIDTH_FRACTION = 0.006
MIN_FONT_PX = 10
MIN_CANVAS_WIDTH = 640  # narrow videos are centred on a canvas this wide (room for the strip)
STRIP_PADDING = 6
LEGEND_CHARS = 28
# timeline
TIMELINE_SIZE = (960, 420)  # minimum width, height in pixels
TIMELINE_PX_PER_SECOND = 12
TIMELINE_MAX_WIDTH = 4000
TIMELINE_MARGIN = (60, 20, 220, 40)  # left, top, right (legend), bottom
TIMELINE_CLASSES = 8  # classes drawn: the highest-scoring ones
TIMELINE_FONT = 13
GRID_RGB = (220, 220, 220)
AXIS_RGB = (60, 60, 60)
Y_TICKS = (0.0, 0.25, 0.5, 0.75, 1.0)


def _font(size: int) -> ImageFont.ImageFont:
    """PIL's bundled font at `size` pixels (a fixed-size bitmap font without FreeType)."""
    try:
        return ImageFont.load_default(size=max(size, 8))
    except (TypeError, ImportError, OSError):
        return ImageFont.load_default()


def _even(value: float) -> int:
    """Round to the nearest even integer >= 2 (H.264 yuv420p needs even sizes)."""
    return max(2, 2 * round(value / 2))


def _shorten(text: str, limit: int) -> str:
    """Cut long text with an ellipsis."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _fit(draw: ImageDraw.ImageDraw, text: str, font: ImageFont.ImageFont, width: float) -> str:
    """The longest prefix of `text` (with an ellipsis when cut) that is at most `width` wide."""
    if draw.textlength(text, font=font) <= width:
        return text
    while text and draw.textlength(text + "…", font=font) > width:
        text = text[:-1]
    return text + "…"


class VideoRenderer:
    """Encode the video's frames with boxes, top actions per person and a memory strip below.

    Frames are scaled to `height` pixels (aspect kept) and centred on a canvas at least
    MIN_CANVAS_WIDTH wide. The strip lists the memory entries that got the most attention at
    that second, with the captions written at the clip they hold.
    """

    def __init__(
        self,
        path: PathType,
        fps: float,
        frame_size: tuple[int, int],
        class_ids: Sequence[int],
        names: Mapping[int, str],
        top_k: int,
        height: int,
    ) -> None:
        src_w, src_h = frame_size
        self.path = Path(path)
        self.size = (_even(src_w * height / src_h), _even(height))  # video area W, H
        font_px = max(MIN_FONT_PX, round(FONT_FRACTION * self.size[1]))
        self.font = _font(font_px)
        self.line = round(font_px * LINE_SPACING)
        strip = self.line * (STRIP_LINES + 1) + self.line // 2
        self.canvas = (_even(max(self.size[0], MIN_CANVAS_WIDTH)), _even(self.size[1] + strip))
        self.offset = (self.canvas[0] - self.size[0]) // 2  # x of the video area
        self.class_ids = list(class_ids)
        self.names = names
        self.top_k = top_k
        self.frames = 0
        rate = Fraction(fps).limit_denominator(MAX_FPS_DENOMINATOR)
        self.container = av.open(str(self.path), mode="w")
        self.stream = self.container.add_stream(CODEC, rate=rate, options=ENCODER_OPTIONS)
        self.stream.width, self.stream.height = self.canvas
        self.stream.pix_fmt = PIXEL_FORMAT
        self.stream.codec_context.time_base = 1 / rate

    def add(self, result: SecondResult, frames: Sequence[np.ndarray]) -> None:
        """Encode the frames shown during one second, annotated with that second's result."""
        for image in frames:
            canvas = self._annotate(image, result)
            frame = av.VideoFrame.from_ndarray(np.asarray(canvas), format="rgb24")
            frame.pts = self.frames
            self.container.mux(self.stream.encode(frame))
            self.frames += 1

    def _annotate(self, image: np.ndarray, result: SecondResult) -> Image.Image:
        """One output frame: the scaled frame with boxes and labels above the memory strip."""
        width, height = self.size
        canvas = Image.new("RGB", self.canvas, STRIP_RGB)
        canvas.paste(Image.fromarray(image).resize(self.size, Image.BILINEAR), (self.offset, 0))
        draw = ImageDraw.Draw(canvas)
        line_width = max(1, round(BOX_WIDTH_FRACTION * height))
        scale = np.array([width, height, width, height])
        for n, box in enumerate(result.boxes.numpy()):
            colour = PALETTE[n % len(PALETTE)]
            x1, y1, x2, y2 = (box * scale).tolist()
            x1, x2 = x1 + self.offset, x2 + self.offset
            draw.rectangle((x1, y1, x2, y2), outline=colour, width=line_width)
            labels = [
                f"{self.names[self.class_ids[c]]} {s:.2f}"
                for c, s in result.top_actions(n, self.top_k)
            ]
            self._label(draw, (x1, y1 - len(labels) * self.line), labels, colour)  # above
        self._label(draw, (0, 0), [f"t={result.second} s  ({result.timestamp})"], TEXT_RGB)
        self._strip(draw, result, top=height)
        return canvas

    def _label(
        self, draw: ImageDraw.ImageDraw, at: tuple[float, float], lines: list[str], colour: tuple
    ) -> None:
        """Lines of text on a dark background from `at` down, kept inside the video area."""
        x, y = at
        left_edge, right_edge = self.offset, self.offset + self.size[0]
        for text in lines:
            text = _fit(draw, text, self.font, self.size[0] - 2)
            text_w = draw.textlength(text, font=self.font)
            x0 = min(max(x, left_edge), max(right_edge - text_w - 2, left_edge))
            y0 = min(max(y, 0), max(self.size[1] - self.line, 0))
            draw.rectangle((x0, y0, x0 + text_w + 2, y0 + self.line), fill=LABEL_BACKGROUND)
            draw.text((x0 + 1, y0), text, fill=colour, font=self.font)
            y = y0 + self.line

    def _strip(self, draw: ImageDraw.ImageDraw, result: SecondResult, top: int) -> None:
        """The memory entries read at this second, most attended first, with their captions."""
        y = top + self.line // 4
        width = self.canvas[0] - 2 * STRIP_PADDING
        draw.text(
            (STRIP_PADDING, y), "memory read (most attended first):", fill=TEXT_RGB, font=self.font
        )
        entries = sorted(result.memory, key=lambda e: -(e.attention or 0.0))[:STRIP_LINES]
        if not entries:
            draw.text((STRIP_PADDING, y + self.line), "(empty)", fill=TEXT_RGB, font=self.font)
        for i, entry in enumerate(entries):
            mass = "-" if entry.attention is None else f"{entry.attention:.2f}"
            caption = "; ".join(entry.captions) or "(no caption)"
            text = _fit(
                draw,
                f"{entry.kind} t-{entry.clips_back}s  attn {mass}  {caption}",
                self.font,
                width,
            )
            draw.text((STRIP_PADDING, y + (i + 1) * self.line), text, fill=TEXT_RGB, font=self.font)

    def close(self) -> None:
        """Flush the encoder and close the file."""
        self.container.mux(self.stream.encode(None))
        self.container.close()


def _runs(mask: np.ndarray) -> list[range]:
    """Maximal runs of consecutive True positions of a boolean vector."""
    runs, start = [], None
    for i, value in enumerate([*mask.tolist(), False]):
        if value and start is None:
            start = i
        elif not value and start is not None:
            runs.append(range(start, i))
            start = None
    return runs


def render_timeline(
    path: PathType,
    timestamps: Sequence[int],
    scores: np.ndarray,
    class_ids: Sequence[int],
    names: Mapping[int, str],
    title: str,
) -> None:
    """PNG of action scores over time: per class, the best person's probability per second.

    `scores` is [S, K] (seconds x classes), NaN for a second without person boxes (drawn as a
    gap, not as 0); the TIMELINE_CLASSES classes with the highest peak are drawn in colours
    distinct from the box colours, with a legend.
    """
    count = len(timestamps)
    width = min(
        max(TIMELINE_SIZE[0], count * TIMELINE_PX_PER_SECOND + TIMELINE_MARGIN[0] * 4),
        TIMELINE_MAX_WIDTH,
    )
    height = TIMELINE_SIZE[1]
    left, top, right, bottom = TIMELINE_MARGIN
    plot_w, plot_h = width - left - right, height - top - bottom
    image = Image.new("RGB", (width, height), (255, 255, 255))
    draw = ImageDraw.Draw(image)
    font = _font(TIMELINE_FONT)

    def xy(i: int, value: float) -> tuple[float, float]:
        x = left + (plot_w * i / max(count - 1, 1))
        return x, top + plot_h * (1.0 - value)

    for tick in Y_TICKS:
        _, y = xy(0, tick)
        draw.line((left, y, left + plot_w, y), fill=GRID_RGB)
        draw.text((left - 36, y - TIMELINE_FONT // 2), f"{tick:.2f}", fill=AXIS_RGB, font=font)
    step = max(1, count // 10)
    for i in range(0, count, step):
        x, _ = xy(i, 0.0)
        draw.line((x, top + plot_h, x, top + plot_h + 4), fill=AXIS_RGB)
        draw.text((x - 12, top + plot_h + 6), str(timestamps[i]), fill=AXIS_RGB, font=font)
    draw.rectangle((left, top, left + plot_w, top + plot_h), outline=AXIS_RGB)
    draw.text(
        (left, height - TIMELINE_FONT - 4),
        f"{title}  (x: timestamp, s; y: score)",
        fill=AXIS_RGB,
        font=font,
    )
    scored = ~np.isnan(scores).any(axis=1) if count else np.zeros(0, bool)  # [S]
    if scored.any():
        peaks = scores[scored].max(axis=0)  # [K]
        order = np.argsort(-peaks, kind="stable")[:TIMELINE_CLASSES]
        for slot, k in enumerate(order.tolist()):
            colour = CLASS_PALETTE[slot % len(CLASS_PALETTE)]
            for run in _runs(scored):  # seconds without boxes are gaps
                points = [xy(i, float(scores[i, k])) for i in run]
                if len(points) == 1:
                    x, y = points[0]
                    draw.ellipse((x - 3, y - 3, x + 3, y + 3), fill=colour)
                else:
                    draw.line(points, fill=colour, width=2)
            legend_y = top + slot * (TIMELINE_FONT + 6)
            draw.rectangle(
                (width - right + 10, legend_y + 3, width - right + 24, legend_y + 13), fill=colour
            )
            name = _shorten(f"{class_ids[k]} {names[class_ids[k]]}", LEGEND_CHARS)
            draw.text((width - right + 30, legend_y), name, fill=AXIS_RGB, font=font)
    image.save(path)


__all__ = ["VideoRenderer", "render_timeline"]
