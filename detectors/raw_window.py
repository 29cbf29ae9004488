"""The window itself as the vector: (B, C, L) -> (B, C * L), the values unchanged.

For scorers that keep a memory per stream (LOF, self-similarity, and the mixture of those two):
there a stream is only ever compared with its own past, so raw values are fine and keep
everything the window holds, its level included. On NAB, these scorers rank anomalies best on
raw windows of every weight-free input measured (README, Measured). Streams do not share a
scale, so a scorer shared by all streams (half-space trees) needs scale-free vectors instead.

>>> RawWindowEmbedder().embed(torch.arange(6.0).view(1, 2, 3)).tolist()
[[0.0, 1.0, 2.0, 3.0, 4.0, 5.0]]
"""

from __future__ import annotations

import torch


class RawWindowEmbedder:
    """(B, C, L) windows -> (B, C * L) float64 vectors, channel after channel."""

    def __init__(self, device: str | torch.device = "cpu"):
        self.device = torch.device(device)

    def embed(self, windows: torch.Tensor) -> torch.Tensor:
        return windows.to(self.device, torch.float64).flatten(1)
