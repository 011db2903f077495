"""Write the synthetic AVA-format dataset: ``python -m tinymem.tools.make_synthetic out=DIR``.

Other ``key=value`` arguments set SyntheticSpec fields, e.g. ``seed=3 num_train_videos=8``;
``colours=red,green,blue`` takes a comma-separated list.
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Sequence

from tinymem.data.ava.synthetic import SyntheticSpec, generate

USAGE = (
    "usage: python -m tinymem.tools.make_synthetic out=DIR [key=value ...] with keys: "
    + ", ".join(f.name for f in dataclasses.fields(SyntheticSpec))
)


def parse_args(argv: Sequence[str]) -> tuple[str, SyntheticSpec]:
    """Parse ``out=DIR`` and ``field=value`` arguments into (out_dir, spec)."""
    fields = {f.name: f.default for f in dataclasses.fields(SyntheticSpec)}
    out_dir = None
    values: dict[str, object] = {}
    for arg in argv:
        key, sep, text = arg.partition("=")
        if not sep or not text:
            raise ValueError(f"expected key=value, got {arg!r}")
        if key == "out":
            out_dir = text
        elif key not in fields:
            raise ValueError(f"unknown key {key!r}; expected out or one of {sorted(fields)}")
        elif isinstance(fields[key], tuple):
            values[key] = tuple(part.strip() for part in text.split(",") if part.strip())
        else:
            try:
                values[key] = int(text)
            except ValueError:
                raise ValueError(f"{key}: expected an integer, got {text!r}") from None
    if out_dir is None:
        raise ValueError("missing out=DIR")
    return out_dir, SyntheticSpec(**values)


def main(argv: Sequence[str] | None = None) -> int:
    """Generate the dataset; returns the process exit status (2 for bad arguments)."""
    try:
        out_dir, spec = parse_args(sys.argv[1:] if argv is None else argv)
    except ValueError as e:
        print(f"make_synthetic: {e}\n{USAGE}", file=sys.stderr)
        return 2
    out = generate(out_dir, spec)
    videos = spec.num_train_videos + spec.num_val_videos
    print(
        f"wrote {videos} videos ({spec.num_frames} frames each, {len(spec.keyframes)} keyframes) "
        f"with annotations, proposals, label map and captions to {out}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
