"""Cameras one machine sustains: the camera worker's own work (decode, then judge), in process.

    .venv/bin/python benchmarks/camera_capacity.py [--encoder stats efficientnet] [--device cpu|cuda]
        [--decoders 2] [--cameras 100] [--rounds 6] [--poll 64]

What `argus serve` does with each poll of the clips topic, without the broker: ``--poll`` clips
(serve's poll size) are decoded by the isolated decoder pool (``video.decoders`` child processes,
every frame at 5 fps, resized to 160x96), then judged in one call by the camera detector that serve
builds from its config (encoder, per-camera LOF memory and threshold, frame novelty and PNG
keyframes for anomalous clips). Serve does these two steps one after the other, and so does this.

The clips are a real camera's footage (one-by-one-person-detection.mp4, 768x432, 2-second clips),
one copy per camera, cameras interleaved in time, an injected anomaly in every 4th clip after the
30th. The first round (one clip from every camera) is a warm-up and is not timed. Cameras
sustained = clips/s x 2 s. One line per encoder, side by side in one run. Where a broker can run,
`benchmarks/camera_pipeline.py` measures the same end to end through Kafka.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from argus.config import load_config  # noqa: E402
from argus.wiring import camera_detector_factory, clip_decoder  # noqa: E402
from video.camera_feed import VIDEO_DIR, make_feed  # noqa: E402

CLIP_SECONDS, FPS = 2.0, 5.0


def measure(encoder: str, device: str, decoders: int, clips: list, poll: int, cameras: int) -> dict:
    """Clips/s over the timed rounds, and the seconds spent decoding and judging."""
    with tempfile.TemporaryDirectory(prefix="argus-capacity-") as keyframes:
        config = load_config(None, {"video.enabled": True, "video.encoder": encoder, "detector.device": device,
                                    "video.decoders": decoders, "video.keyframe_dir": keyframes})
        detector = camera_detector_factory(config)()
        decode_all = clip_decoder(config)
        warm_up, timed = clips[:cameras], clips[cameras:]  # the first round warms the encoder and memories
        for part in (warm_up, timed):
            decode_s = judge_s = 0.0
            for number in range(0, len(part), poll):
                batch = part[number:number + poll]
                started = time.perf_counter()
                decoded = decode_all([clip.data for clip in batch])
                between = time.perf_counter()
                detector.judge([c.camera for c in batch], [c.start for c in batch], decoded)
                if device.startswith("cuda"):
                    torch.cuda.synchronize()
                decode_s += between - started
                judge_s += time.perf_counter() - between
    return {"clips_per_s": len(timed) / (decode_s + judge_s), "decode_s": decode_s, "judge_s": judge_s, "clips": len(timed)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--encoder", nargs="+", default=["stats", "efficientnet"], choices=["stats", "efficientnet"])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--decoders", type=int, default=2, help="decoder processes (video.decoders)")
    parser.add_argument("--cameras", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=6, help="clips per camera, the warm-up round included")
    parser.add_argument("--poll", type=int, default=64, help="clips per poll, as serve polls them")
    args = parser.parse_args()
    if args.rounds < 2:
        parser.error("--rounds must be at least 2 (the first is a warm-up)")

    feed = make_feed(VIDEO_DIR / "one-by-one-person-detection.mp4", "cam", seconds=CLIP_SECONDS, fps=FPS,
                     width=768, height=432, normal_clips=30, anomaly_every=4, other=VIDEO_DIR / "car-detection.mp4")
    clips = [dataclasses.replace(clip, camera=f"cam-{camera:04d}")
             for clip in (feed.clips * (1 + args.rounds // len(feed.clips)))[:args.rounds]
             for camera in range(args.cameras)]
    device_name = torch.cuda.get_device_name() if args.device.startswith("cuda") else f"CPU, {torch.get_num_threads()} torch threads"
    print(f"{args.cameras} cameras x {args.rounds} clips (2 s, 768x432), polls of {args.poll}, "
          f"{args.decoders} decoder processes, {device_name}\n", flush=True)
    print("| encoder | device | decoders | clips/s | cameras sustained | decode share | judge ms/clip |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for encoder in args.encoder:
        r = measure(encoder, args.device, args.decoders, clips, args.poll, args.cameras)
        print(f"| {encoder} | {args.device} | {args.decoders} | {r['clips_per_s']:.1f} | "
              f"{r['clips_per_s'] * CLIP_SECONDS:.0f} | {r['decode_s'] / (r['decode_s'] + r['judge_s']):.0%} | "
              f"{1000 * r['judge_s'] / r['clips']:.2f} |", flush=True)


if __name__ == "__main__":
    main()
