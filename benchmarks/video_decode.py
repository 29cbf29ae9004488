"""Video speed, side by side in one run: decoding frames/s (decord, 1 thread, 640x480, vs PyAV on
the same clip) and clip-encoder frames/s (weight-free vs pretrained EfficientNet-Lite0).

    python benchmarks/video_decode.py [--clip PATH] [--frames 300] [--device cpu] [--batch 64 256]

Prints markdown tables. Both decoders decode every frame of the first ``--frames`` frames of
the clip, converted to 640x480 RGB (decord resizes on decode; PyAV through FFmpeg's scaler,
with its codec on one thread). Encoders embed clips of 8 frames of 224x224, ``--batch`` frames
a call.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from video.decode import VideoSource
from video.encoders import EfficientNetLiteEncoder, StatsEncoder

CLIP = Path(__file__).resolve().parents[2] / "shared" / "data" / "video" / "one-by-one-person-detection.mp4"


def decord_fps(path: Path, frames: int) -> float:
    start = time.perf_counter()
    source = VideoSource(path, width=640, height=480, num_threads=1, max_bytes=None)
    count = min(frames, source.frame_count)
    decoded = source.read(np.arange(count), max_decoded_bytes=None)
    assert decoded.frames.shape == (count, 480, 640, 3)
    return count / (time.perf_counter() - start)


def pyav_fps(path: Path, frames: int) -> float:
    import av

    start = time.perf_counter()
    count = 0
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.thread_count = 1
        for frame in container.decode(stream):
            rgb = frame.to_ndarray(format="rgb24", width=640, height=480)
            assert rgb.shape == (480, 640, 3)
            count += 1
            if count == frames:
                break
    return count / (time.perf_counter() - start)


def encoder_fps(encoder, batch: int, repeats: int = 3) -> float:
    clips = np.random.default_rng(0).integers(0, 256, (batch // 8, 8, 224, 224, 3), dtype=np.uint8)
    encoder.embed(clips)  # warm-up
    if encoder.device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(repeats):
        encoder.embed(clips)
    if encoder.device.type == "cuda":
        torch.cuda.synchronize()
    return repeats * batch / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clip", type=Path, default=CLIP)
    parser.add_argument("--frames", type=int, default=300)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batch", type=int, nargs="+", default=[64, 256], help="frames a call (several: a column each)")
    args = parser.parse_args()

    print(f"Decoding {args.frames} frames of {args.clip.name} to 640x480 RGB, one thread\n")
    print("| decoder | frames/s |\n|---|---|")
    print(f"| decord {__import__('decord').__version__} | {decord_fps(args.clip, args.frames):.0f} |")
    try:
        print(f"| PyAV {__import__('av').__version__} | {pyav_fps(args.clip, args.frames):.0f} |")
    except ImportError:  # the GPU machines' image has no PyAV
        print("| PyAV | not installed here |")

    print(f"\nClip encoders on {args.device}, frames of 224x224 (clips of 8), torch threads {torch.get_num_threads()}\n")
    print("| encoder | clip vector size | " + " | ".join(f"frames/s, batch {b}" for b in args.batch) + " |")
    print("|---|---|" + "---|" * len(args.batch))
    for name, make in [("weight-free (StatsEncoder)", lambda: StatsEncoder(args.device)),
                       ("EfficientNet-Lite0 (pretrained)", lambda: EfficientNetLiteEncoder(args.device))]:
        encoder = make()
        rates = " | ".join(f"{encoder_fps(encoder, b):.0f}" for b in args.batch)
        print(f"| {name} | {encoder.dimension} | {rates} |")

if __name__ == "__main__":
    main()
