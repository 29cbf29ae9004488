"""A weight-free embedder: scale-free statistics of a window's latest point and volatility.

For each channel of a window x[0..L-1] it measures

- level: |last point - mean of the rest| in units of the rest's std;
- step: |last step| in units of the window's mean absolute step;
- burst / flat: how much the last quarter's std exceeds / falls short of the earlier part's
  (as a log ratio),

takes the worst channel for each, and squashes them into [0, 1) with f / (f + 3). Being
scale-free and channel-count-free, the vectors of all streams are comparable, so one scorer
can serve many streams: (B, C, L) -> (B, 4).

>>> emb = WindowStatsEmbedder()
>>> x = torch.zeros(1, 1, 16); x[0, 0, :15] = torch.randn(15) * 0.1; x[0, 0, 15] = 5.0
>>> float(emb.embed(x)[0, 0]) > 0.8
True
"""

from __future__ import annotations

import torch


class WindowStatsEmbedder:
    """(B, C, L) windows -> (B, 4) vectors in [0, 1); runs on any torch device."""

    dimension = 4

    def __init__(self, device: str | torch.device = "cpu"):
        self.device = torch.device(device)

    def embed(self, windows: torch.Tensor) -> torch.Tensor:
        x = windows.to(self.device, torch.float64)
        history, last = x[..., :-1], x[..., -1]
        eps = 1e-9 + 1e-3 * x.abs().mean(dim=-1)
        level = (last - history.mean(dim=-1)).abs() / (_std(history) + eps)
        step = (last - history[..., -1]).abs() / (history.diff(dim=-1).abs().mean(dim=-1) + eps)
        split = max(2, x.shape[-1] // 4)
        volatility = torch.log((_std(x[..., -split:]) + eps) / (_std(x[..., :-split]) + eps))
        features = torch.stack(
            [level.amax(1), step.amax(1), volatility.amax(1).clamp(min=0), (-volatility).amax(1).clamp(min=0)],
            dim=-1,
        )
        return (features / (features + 3)).float()


def _std(x: torch.Tensor) -> torch.Tensor:
    """``x.std(dim=-1)`` (n - 1 in the denominator), written out: torch's own reduction over a
    short last axis is several times slower on CPU."""
    deviation = x - x.mean(dim=-1, keepdim=True)
    return (deviation.square().sum(dim=-1) / (x.shape[-1] - 1)).sqrt()
