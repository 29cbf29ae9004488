"""Cameras one machine sustains: the camera worker's own work, in process, without the broker.

    .venv/bin/python benchmarks/camera_capacity.py [--encoder stats efficientnet] [--device cpu|cuda]
        [--decoders 2] [--cameras 100] [--rounds 6] [--poll 64] [--runs 2] [--modes ahead one-by-one]

The clip records of a real camera's footage (one-by-one-person-detection.mp4, 768x432, 2-second
clips at 5 frames/s, an injected anomaly in every 4th clip after the 30th), one copy per camera,
cameras interleaved in time, go through the `CameraProcessor` that `argus serve` builds from its
config, in polls of ``--poll`` records (serve's poll size): parse, decode in ``--decoders``
isolated decoder processes, then judge (encoder, per-camera LOF and threshold, frame
novelty and PNG keyframes of anomalous clips), alerts. Mode ``ahead`` starts decoding the next
poll before judging this one, as serve's worker does; ``one-by-one`` decodes a poll, then judges
it (the baseline). What it leaves out is Kafka: alerts and
dead letters go to a producer that drops them (the outbox counts them), and nothing is committed.
`benchmarks/camera_pipeline.py` measures the whole of serve through a real broker.

The first round (one clip of every camera) warms up and is not timed. Cameras sustained =
clips/s x 2 s. One line per encoder, mode and run, side by side in one run.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import DroppingProducer  # noqa: E402
from argus.config import load_config  # noqa: E402
from argus.wiring import camera_detector_factory, clip_decoder  # noqa: E402
from streams.camera_pipeline import CameraProcessor, CameraSettings  # noqa: E402
from streams.clip_records import encode_clip_message  # noqa: E402
from streams.worker import Outbox  # noqa: E402
from video.camera_feed import VIDEO_DIR, make_feed  # noqa: E402

CLIP_SECONDS, FPS = 2.0, 5.0


def clip_records(clips: list) -> list:
    """The clips as the consumer delivers them: key, value and headers of the clips topic."""
    records = []
    for offset, clip in enumerate(clips):
        key, value, headers = encode_clip_message(clip.camera, clip.start, clip.fps, data=clip.data, frames=clip.frames)
        records.append(SimpleNamespace(key=key, value=value, headers=headers, topic="clips", partition=0, offset=offset))
    return records


def measure(encoder: str, device: str, decoders: int, records: list, poll: int, cameras: int,
            ahead: bool = True) -> dict:
    """Clips/s over the rounds after the first, the alerts raised, and where the time went:
    waiting for decoded clips, and judging. ``ahead``: the next poll decodes while this one is
    judged, as in serve."""
    with tempfile.TemporaryDirectory(prefix="argus-capacity-") as keyframes:
        config = load_config(None, {"video.enabled": True, "video.encoder": encoder, "detector.device": device,
                                    "video.decoders": decoders, "video.keyframe_dir": keyframes})
        torch.set_num_threads(config.detector.cpu_threads)  # as `argus serve` sets it (1 by default)
        outbox = Outbox(DroppingProducer(), "alerts", "dead-letters")
        spent = {"decode": 0.0, "judge": 0.0}
        start_decoding = clip_decoder(config)
        processor = CameraProcessor(CameraSettings(), lambda clips: timed(start_decoding(clips), spent, "decode"),
                                    camera_detector_factory(config), outbox)
        state = processor.new_state()
        state.detector.judge = timed(state.detector.judge, spent, "judge")
        for part in (records[:cameras], records[cameras:]):  # warm-up round, then the timed rounds
            spent.update(decode=0.0, judge=0.0)
            allocations = device_allocations(device)
            started = time.perf_counter()
            polls = [part[number:number + poll] for number in range(0, len(part), poll)]
            prepared = processor.prepare(polls[0]) if ahead else None  # None: process prepares it then
            for number, records_of_poll in enumerate(polls):
                # ahead, as serve's worker: start the next poll's decoding, then judge this one
                following = processor.prepare(polls[number + 1]) if ahead and number + 1 < len(polls) else None
                processor.process(state, records_of_poll, prepared)
                prepared = following
            if device.startswith("cuda"):
                torch.cuda.synchronize()
            seconds = time.perf_counter() - started
    timed_clips = len(records) - cameras
    return {"clips_per_s": timed_clips / seconds, "alerts": outbox.counters.alerts,
            "dead_letters": sum(outbox.counters.dead_letters.values()),
            "decode_ms": 1e3 * spent["decode"] / timed_clips, "judge_ms": 1e3 * spent["judge"] / timed_clips,
            "device_allocations": device_allocations(device) - allocations}


def device_allocations(device: str) -> float:
    """Memory the CUDA caching allocator has asked the driver for so far (each a synchronising
    cudaMalloc); NaN off CUDA. Timed rounds that still allocate were not warm."""
    if not device.startswith("cuda"):
        return math.nan
    return float(torch.cuda.memory_stats().get("num_device_alloc", math.nan))


def timed(function, spent: dict, step: str):
    """``function``, adding its wall time to ``spent[step]`` (the judge's GPU work is asynchronous:
    what it leaves running counts where it is next waited for)."""
    def run(*args, **kwargs):
        started = time.perf_counter()
        try:
            return function(*args, **kwargs)
        finally:
            spent[step] += time.perf_counter() - started
    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--encoder", nargs="+", default=["stats", "efficientnet"], choices=["stats", "efficientnet"])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--decoders", type=int, default=2, help="decoder processes (video.decoders)")
    parser.add_argument("--cameras", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=6, help="clips per camera, the warm-up round included")
    parser.add_argument("--poll", type=int, default=64, help="clips per poll, as serve polls them")
    parser.add_argument("--modes", nargs="+", default=["ahead", "one-by-one"], choices=["ahead", "one-by-one"],
                        help="ahead: the next poll decodes while this one is judged (serve); one-by-one: not")
    parser.add_argument("--runs", type=int, default=2, help="runs of each encoder, a row each (a process's "
                        "first run on a GPU stalled on new batch sizes until the encoder padded them)")
    args = parser.parse_args()
    if args.rounds < 2:
        parser.error("--rounds must be at least 2 (the first is a warm-up)")

    feed = make_feed(VIDEO_DIR / "one-by-one-person-detection.mp4", "cam", seconds=CLIP_SECONDS, fps=FPS,
                     width=768, height=432, normal_clips=30, anomaly_every=4, other=VIDEO_DIR / "car-detection.mp4")
    clips = [dataclasses.replace(clip, camera=f"cam-{camera:04d}")
             for clip in (feed.clips * (1 + args.rounds // len(feed.clips)))[:args.rounds]
             for camera in range(args.cameras)]
    records = clip_records(clips)
    where = torch.cuda.get_device_name() if args.device.startswith("cuda") else "CPU"
    print(f"{args.cameras} cameras x {args.rounds} clips (2 s, 768x432), polls of {args.poll}, "
          f"{args.decoders} decoder processes, {where}, torch CPU threads as serve sets them\n", flush=True)
    print("| encoder | decoding | run | clips/s | cameras sustained | waiting for decoding (ms a clip) "
          "| judging (ms a clip) | alerts | device allocations while timed |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
    for encoder in args.encoder:
        for mode in args.modes:
            for run in range(1, args.runs + 1):
                r = measure(encoder, args.device, args.decoders, records, args.poll, args.cameras, mode == "ahead")
                print(f"| {encoder} | {mode} | {run} | {r['clips_per_s']:.1f} | {r['clips_per_s'] * CLIP_SECONDS:.0f} "
                      f"| {r['decode_ms']:.2f} | {r['judge_ms']:.2f} | {r['alerts']} | {r['device_allocations']:g} |",
                      flush=True)


if __name__ == "__main__":
    main()
