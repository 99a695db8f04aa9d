"""Decode-only: the physical limit of any pipeline that looks at sampled frames of a video.

What: one process that opens the video with PyAV and

* ``--mode all``: decodes every frame sequentially (``thread_type="AUTO"``: FFmpeg's frame
  and slice threads on every core) and converts none: the floor for reading the video;
* ``--mode sampled``: does the same but converts the frames the pipeline keeps (the first
  frame of each 1/sample_fps slot) to BGR, with the pipeline's own decoder,
  ``modal_gpu.video.iter_sampled_frames``: the floor for producing its detector input.

Prints one JSON line: frames decoded/kept, seconds, imports. Process start is part of the
measurement when ``benchmarks/bench.py`` times this script as a child process, like the
systems it is compared with.

How: ``python -m benchmarks.decode_only VIDEO [--mode all|sampled] [--sample-fps 2]``, from
the repository root.
"""

from __future__ import annotations

import time

_T0 = time.perf_counter()

import argparse  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402


def decode_all(path: Path) -> int:
    import av

    frames = 0
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        for _ in container.decode(stream):
            frames += 1
    return frames


def decode_sampled(path: Path, sample_fps: float) -> int:
    from modal_gpu.video import iter_sampled_frames

    return sum(1 for _ in iter_sampled_frames(path, sample_fps))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("video", type=Path)
    parser.add_argument("--mode", choices=("all", "sampled"), default="all")
    parser.add_argument("--sample-fps", type=float, default=2.0)
    args = parser.parse_args(argv)
    started = time.perf_counter()
    if args.mode == "all":
        frames = decode_all(args.video)
    else:
        frames = decode_sampled(args.video, args.sample_fps)
    done = time.perf_counter()
    print(
        json.dumps(
            {
                "mode": args.mode,
                "frames": frames,
                "decode_s": round(done - started, 3),
                "before_decode_s": round(started - _T0, 3),
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
