"""Camera detection quality, pretrained vs weight-free encoder, on the labelled demo camera.

    .venv/bin/python benchmarks/camera_quality.py [--kinds splice blackout shake motion freeze]

The demo's camera (one-by-one-person-detection.mp4, 69 two-second clips at 5 frames/s,
160x96) with an injected anomaly in every 4th clip after the 30th, kinds in turn. Each encoder
runs the camera detector `argus serve` runs (per-camera clip LOF, rolling threshold, odd frames
against the camera's normal frames), 4 clips a call, no Kafka. Every sampled frame gets two
scores: its clip's score, and the clip score times the frame's novelty against the camera's
normal frames (so the odd frames of an odd clip rank first). Frame-level AUC-ROC and PATE
(buffers of 5 frames = 1 s) are over the frames after the 30 warm-up clips; clip-level: the
labelled anomalies with an alert and the alerts outside every label.
"""

from __future__ import annotations

import argparse
import tempfile
import time

import numpy as np

from argus.config import load_config
from argus.wiring import camera_detector_factory
from detectors.no_opinion import fill_no_opinion
from evaluation.auc import auc_roc
from evaluation.pate import pate
from video.camera_feed import FEED_KINDS, VIDEO_DIR, make_feed
from video.decode import decode_clip

WARM, EVERY, FPS = 30, 4, 5.0


def run(encoder: str, feed, decoded, keyframes: str) -> dict:
    config = load_config(None, {"video.encoder": encoder, "video.keyframe_dir": keyframes})
    detector = camera_detector_factory(config)()
    started = time.perf_counter()
    clip_scores, frame_scores, verdicts = [], [], []
    for i in range(0, len(decoded), 4):
        part = list(zip(feed.clips, decoded))[i:i + 4]
        batch = [d for _, d in part]
        features = detector.encoder.frame_features(np.stack([d.frames for d in batch]))
        references = [detector.references.get(c.camera) for c, _ in part]  # as they stood before this call
        novelty = [r.novelty(f).numpy() if r is not None and r.ready else np.ones(len(f))
                   for r, f in zip(references, features)]
        out = detector.judge([c.camera for c, _ in part], [c.start for c, _ in part], batch)
        for verdict, frames_novelty in zip(out, novelty):
            clip_scores.append(np.full(len(frames_novelty), verdict.score))
            frame_scores.append(verdict.score * frames_novelty)
            verdicts.append(verdict)
    seconds = time.perf_counter() - started
    times = np.concatenate([c.start + d.timestamps for c, d in zip(feed.clips, decoded)])
    truth = np.zeros(len(times), int)
    for start, end, _ in feed.labels:
        truth[(times >= start - 1e-6) & (times <= end + 1e-6)] = 1
    after = slice(WARM * len(decoded[0].timestamps), None)
    anomalous = [v for v in verdicts if v.anomalous]
    hit = sum(any(v.span[0] <= end and start <= v.span[1] for v in anomalous) for start, end, _ in feed.labels)
    false = sum(not any(v.span[0] <= end and start <= v.span[1] for start, end, _ in feed.labels) for v in anomalous)
    row = {"encoder": encoder, "labelled": len(feed.labels), "alerted": hit, "false": false, "seconds": seconds}
    for name, parts in (("clip", clip_scores), ("frame", frame_scores)):
        scores = fill_no_opinion(np.concatenate(parts))  # the metrics take finite scores only
        row[f"{name}_auc"] = auc_roc(truth[after], scores[after])
        row[f"{name}_pate"] = pate(truth[after], scores[after], early_buffer=5, delay_buffer=5)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kinds", nargs="+", default=list(FEED_KINDS), help="anomaly kinds, in turn")
    parser.add_argument("--encoders", nargs="+", default=["stats", "efficientnet"])
    args = parser.parse_args()
    feed = make_feed(VIDEO_DIR / "one-by-one-person-detection.mp4", "camera-entrance", fps=FPS, normal_clips=WARM,
                     anomaly_every=EVERY, kinds=args.kinds, other=VIDEO_DIR / "car-detection.mp4")
    decoded = [decode_clip(clip.data, fps=FPS, width=160, height=96) for clip in feed.clips]
    print(f"{len(feed.clips)} clips, {len(feed.labels)} anomalies ({', '.join(args.kinds)})", flush=True)
    rows = []
    with tempfile.TemporaryDirectory() as keyframes:
        for encoder in args.encoders:
            rows.append(run(encoder, feed, decoded, keyframes))
            print(rows[-1], flush=True)
    print("\n| encoder | anomalies alerted | alerts outside labels | frame AUC-ROC (clip score) | frame PATE (clip score) "
          "| frame AUC-ROC (clip x frame novelty) | frame PATE (clip x frame novelty) | seconds |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['encoder']} | {r['alerted']}/{r['labelled']} | {r['false']} | {r['clip_auc']:.3f} | "
              f"{r['clip_pate']:.3f} | {r['frame_auc']:.3f} | {r['frame_pate']:.3f} | {r['seconds']:.1f} |")


if __name__ == "__main__":
    main()
