"""AVA's public frame layout: 30 fps JPEG folders and the frame-list files that index them.

Layout (SlowFast's AVA preparation; ``python -m tinymem.tools.prepare_ava`` writes it)::

    frames/<video_id>/<video_id>_000001.jpg ...   frame 0 of the cut video is file 000001
    frame_lists/{train,val}.csv                   space-separated, with this header line:
        original_vido_id video_id frame_id path labels          ("vido": the real typo)
        -5KQ66BBWC4 0 0 -5KQ66BBWC4/-5KQ66BBWC4_000001.jpg ""

``video_id`` is the video's index in the list, ``frame_id`` the 0-based frame, ``path`` relative
to the frame folder, ``labels`` unused (``""``). The cut videos start at second 900 and run at
30 fps, so keyframe second ``s`` is 0-based frame ``(s - 900) * 30``.
"""

from __future__ import annotations

from collections.abc import Mapping

from tinymem.data.frame_sources import JpegFolderSource
from tinymem.errors import data_error
from tinymem.paths import PathType
from tinymem.text_files import open_text

FRAME_LIST_HEADER = ("original_vido_id", "video_id", "frame_id", "path", "labels")
FILE_NUMBER_SUFFIX = "{:06d}.jpg"  # the end of a frame's file name
FRAME_PATTERN = "{video_id}/{video_id}_{frame:06d}.jpg"  # relative to the frame folder
FIRST_FRAME_NUMBER = 1  # file numbers are 1-based
EMPTY_LABELS = '""'
AVA_FPS = 30  # frame rate of the public frames
AVA_START_SEC = 900  # second of the cut videos' first frame
AVA_END_SEC = 1801  # the cut runs to this second (exclusive)


def frame_file(video_id: str, index: int) -> str:
    """Path, relative to the frame folder, of 0-based frame ``index`` of a video."""
    return FRAME_PATTERN.format(video_id=video_id, frame=index + FIRST_FRAME_NUMBER)


def read_frame_list(path: PathType) -> dict[str, int]:
    """Frame count of every video in a frame list, checking each row.

    Expects the header line, then 5 space-separated fields per row; a video's rows are
    consecutive, with one integer ``video_id``, ``frame_id`` 0, 1, 2, ... in order and ``path``
    equal to :func:`frame_file`. Raises DataFormatError naming the file and line otherwise.
    """
    counts: dict[str, int] = {}
    width = len(FRAME_LIST_HEADER)
    with open_text(path) as f:
        header = f.readline().split()
        if tuple(header) != FRAME_LIST_HEADER:
            raise data_error(path, f"expected the header {' '.join(FRAME_LIST_HEADER)!r}", 1)
        video, index, expected, prefix = None, "", 0, ""
        for line_number, line in enumerate(f, start=2):  # a tight loop: AVA has 6M rows
            fields = line.split()
            if len(fields) != width:
                if not fields:
                    continue
                raise data_error(
                    path,
                    f"expected {width} space-separated fields ({' '.join(FRAME_LIST_HEADER)}), "
                    f"got {len(fields)}",
                    line_number,
                )
            if fields[0] != video:
                if video is not None:
                    counts[video] = expected
                video, index, expected = fields[0], fields[1], 0
                if video in counts:
                    raise data_error(
                        path,
                        f"expected the rows of {video!r} together, it appears again",
                        line_number,
                    )
                if not index.isdigit():
                    raise data_error(
                        path, f"expected an integer video_id, got {index!r}", line_number
                    )
                prefix = frame_file(video, 0)[: -len(FILE_NUMBER_SUFFIX.format(FIRST_FRAME_NUMBER))]
            elif fields[1] != index:
                raise data_error(
                    path,
                    f"expected video_id {index} for {video!r} (its first row's), got {fields[1]}",
                    line_number,
                )
            if fields[2] != str(expected):
                raise data_error(
                    path,
                    f"expected frame_id {expected} of {video!r} (in order), got {fields[2]!r}",
                    line_number,
                )
            file = fields[3]
            if not file.startswith(prefix) or file[len(prefix) :] != FILE_NUMBER_SUFFIX.format(
                expected + FIRST_FRAME_NUMBER
            ):
                raise data_error(
                    path,
                    f"expected path {frame_file(video, expected)!r}, got {file!r}",
                    line_number,
                )
            expected += 1
        if video is not None:
            counts[video] = expected
    return counts


def write_frame_list(path: PathType, frame_counts: Mapping[str, int]) -> None:
    """Write a frame list for videos with the given frame counts (video_id = position)."""
    with open(path, "w") as f:
        f.write(" ".join(FRAME_LIST_HEADER) + "\n")
        for position, (video, count) in enumerate(frame_counts.items()):
            f.writelines(
                f"{video} {position} {i} {frame_file(video, i)} {EMPTY_LABELS}\n"
                for i in range(count)
            )


class ListedJpegFrames(JpegFolderSource):
    """A video's JPEG frames in the AVA layout, with the frame count its frame list gives.

    Reading a frame whose file is missing or not a JPEG raises DataFormatError naming the file.
    """

    def __init__(self, frame_dir: PathType, video_id: str, num_frames: int) -> None:
        super().__init__(frame_dir, FRAME_PATTERN, {"video_id": video_id}, FIRST_FRAME_NUMBER)
        self._num_frames = num_frames

    @property
    def num_frames(self) -> int:
        """Frames of the video according to its frame list (no folder scan)."""
        return self._num_frames


__all__ = [
    "AVA_END_SEC",
    "AVA_FPS",
    "AVA_START_SEC",
    "FRAME_LIST_HEADER",
    "ListedJpegFrames",
    "frame_file",
    "read_frame_list",
    "write_frame_list",
]
