"""Speckle2Self network: one encoder per perturbation scale, one shared decoder.

Up-sampling is resize-then-convolve (no transposed convolutions, hence no checkerboard texture;
bilinear in new models, where nearest-neighbour copies make 2 × 2 blocks at every level),
there is no normalisation layer (so a tile's output does not depend on what else is in the tile,
which keeps tiled and whole-frame inference equal), and the output layer is a plain convolution
(no final ReLU or normalisation that would force dead or re-centred output).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import List

import torch
import torch.nn.functional as F
from torch import nn

PRESETS: dict[str, tuple[int, ...]] = {
    "paper": (32, 64, 128, 256),
    "half": (16, 32, 64, 128),
    "small": (12, 24, 48, 96),
    "tiny": (8, 16, 32, 64),
}


@dataclass(frozen=True)
class Architecture:
    """Everything needed to rebuild the network: stored in every model card and checkpoint."""

    widths: tuple[int, ...] = PRESETS["small"]
    scales: tuple[float, ...] = (0.25, 0.5, 1.0)
    interpolation: str = "bilinear"
    negative_slope: float = 0.1
    skips: bool = True
    upsample: str = "bilinear"
    """Decoder resize: 'bilinear', or 'nearest' (models made before bilinear became the default)."""
    full_res_skip: bool = False
    """A full-resolution convolution whose features the decoder adds at its last level, so edges are
    placed to the pixel. Only safe with re-speckling (the target is not the network's own input, so
    copying it through is no minimum); models made before it have none."""
    space_to_depth: int = 1
    """Pixels folded into channels before the encoder (2: each 2 × 2 block becomes 4 channels) and
    unfolded after the decoder. No information is lost, but no convolution runs at the frame's full
    resolution, where a CPU spends most of its time on thin feature maps: the fast student's layout."""

    def __post_init__(self) -> None:
        if not self.widths or any(int(w) < 1 for w in self.widths):
            raise ValueError(f"widths must be positive channel counts, got {self.widths}")
        if not self.scales or any(not 0.0 < s <= 1.0 for s in self.scales):
            raise ValueError(f"scales must lie in (0, 1], got {self.scales}")
        if max(self.scales) != 1.0:
            raise ValueError("the largest scale must be 1.0 (full resolution): inference runs it")
        if self.upsample not in ("bilinear", "nearest"):
            raise ValueError(f"upsample must be 'bilinear' or 'nearest', got {self.upsample!r}")
        if self.space_to_depth not in (1, 2, 4):
            raise ValueError(f"space_to_depth must be 1, 2 or 4, got {self.space_to_depth!r}")
        object.__setattr__(self, "widths", tuple(int(w) for w in self.widths))
        object.__setattr__(self, "scales", tuple(sorted(float(s) for s in self.scales)))

    @property
    def multiple(self) -> int:
        """Frame sides must be multiples of this (the inference module pads to it)."""
        return 2 ** len(self.widths) * self.space_to_depth

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "Architecture":
        return cls(widths=tuple(data["widths"]), scales=tuple(data["scales"]),
                   interpolation=str(data.get("interpolation", "bilinear")),
                   negative_slope=float(data.get("negative_slope", 0.1)),
                   skips=bool(data.get("skips", False)),
                   upsample=str(data.get("upsample", "nearest")),
                   full_res_skip=bool(data.get("full_res_skip", False)),
                   space_to_depth=int(data.get("space_to_depth", 1)))

    @classmethod
    def preset(cls, name: str, **kwargs) -> "Architecture":
        if name not in PRESETS:
            raise ValueError(f"unknown width preset {name!r}; choose one of {sorted(PRESETS)}")
        return cls(widths=PRESETS[name], **kwargs)


class ResidualBlock(nn.Module):
    def __init__(self, channels: int, slope: float) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1)
        self.slope = slope

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.leaky_relu(self.conv1(x), self.slope)
        return F.leaky_relu(x + self.conv2(y), self.slope)


class Encoder(nn.Module):
    """Stride-2 convolution + residual block per level; returns every level's features, finest first.

    Without `full_res` no level is at full resolution, so even with skip connections the decoder
    cannot copy the input's finest speckle grain through: it must rebuild the image from coarser
    features. With it, one full-resolution convolution (started at zero, so a parent model's
    function is unchanged when fine-tuning begins) comes first.
    """

    def __init__(self, widths: tuple[int, ...], slope: float, full_res: bool = False, channels: int = 1) -> None:
        super().__init__()
        chans = (channels,) + tuple(widths)
        self.downs = nn.ModuleList(nn.Conv2d(a, b, 3, stride=2, padding=1) for a, b in zip(chans, chans[1:]))
        self.blocks = nn.ModuleList(ResidualBlock(w, slope) for w in widths)
        self.slope = slope
        self.full_res = full_res
        self.stem = nn.Conv2d(channels, widths[0], 3, padding=1) if full_res else nn.Identity()
        if full_res:
            nn.init.zeros_(self.stem.weight)
            nn.init.zeros_(self.stem.bias)

    def forward(self, x: torch.Tensor) -> List[torch.Tensor]:
        features: List[torch.Tensor] = []
        if self.full_res:
            features.append(F.leaky_relu(self.stem(x), self.slope))
        for down, block in zip(self.downs, self.blocks):
            x = block(F.leaky_relu(down(x), self.slope))
            features.append(x)
        return features


class Decoder(nn.Module):
    """Mirror of the encoder: ×2 resize then convolution per level, plain 1-channel output conv.

    With `skips`, each level adds the encoder's features of the same resolution (a U-Net with
    additive skips), which makes training converge far faster than through the bottleneck alone.
    """

    def __init__(self, widths: tuple[int, ...], slope: float, skips: bool = True,
                 bilinear: bool = True, channels: int = 1) -> None:
        super().__init__()
        rev = tuple(reversed(widths))
        outs = rev[1:] + (rev[-1],)
        self.ups = nn.ModuleList(nn.Conv2d(a, b, 3, padding=1) for a, b in zip(rev, outs))
        self.blocks = nn.ModuleList(ResidualBlock(b, slope) for b in outs)
        self.head = nn.Conv2d(outs[-1], channels, 3, padding=1)
        self.slope = slope
        self.skips = skips
        self.bilinear = bilinear

    def forward(self, features: List[torch.Tensor]) -> torch.Tensor:
        x = features[-1]
        level = len(features) - 2
        for up, block in zip(self.ups, self.blocks):
            if self.bilinear:
                x = F.interpolate(x, scale_factor=2.0, mode="bilinear", align_corners=False)
            else:
                x = F.interpolate(x, scale_factor=2.0, mode="nearest")
            x = F.leaky_relu(up(x), self.slope)
            if self.skips and level >= 0:
                x = x + features[level]
            x = block(x)
            level -= 1
        return self.head(x)


class Denoiser(nn.Module):
    """Inference path D(E_L(x)): what is exported as TorchScript.

    Takes (N, 1, H, W) frames normalised to [0, 1] of any size; pads to the network's multiple,
    crops back, clamps to [0, 1].
    """

    def __init__(self, encoder: Encoder, decoder: Decoder, multiple: int, space_to_depth: int = 1) -> None:
        super().__init__()
        self.encoder = encoder
        self.decoder = decoder
        self.multiple = multiple
        self.space_to_depth = space_to_depth

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2], x.shape[-1]
        ph = (self.multiple - h % self.multiple) % self.multiple
        pw = (self.multiple - w % self.multiple) % self.multiple
        if ph > 0 or pw > 0:
            mode = "reflect" if (ph < h and pw < w) else "replicate"
            x = F.pad(x, [0, pw, 0, ph], mode=mode)
        if self.space_to_depth > 1:
            x = F.pixel_unshuffle(x, self.space_to_depth)
        y = self.decoder(self.encoder(x))
        if self.space_to_depth > 1:
            y = F.pixel_shuffle(y, self.space_to_depth)
        return torch.clamp(y[:, :, :h, :w], 0.0, 1.0)


class Speckle2SelfNet(nn.Module):
    """Training network: encoders[i] serves scale arch.scales[i]; the last one is full resolution."""

    def __init__(self, arch: Architecture) -> None:
        super().__init__()
        self.arch = arch
        channels = arch.space_to_depth ** 2
        self.encoders = nn.ModuleList(Encoder(arch.widths, arch.negative_slope, arch.full_res_skip, channels)
                                      for _ in arch.scales)
        self.decoder = Decoder(arch.widths, arch.negative_slope, arch.skips, arch.upsample == "bilinear", channels)

    def forward(self, views: list[torch.Tensor]) -> list[torch.Tensor]:
        return [self._through(enc, v) for enc, v in zip(self.encoders, views)]

    def _through(self, encoder: Encoder, x: torch.Tensor) -> torch.Tensor:
        fold = self.arch.space_to_depth
        if fold == 1:
            return self.decoder(encoder(x))
        return F.pixel_shuffle(self.decoder(encoder(F.pixel_unshuffle(x, fold))), fold)

    def full_resolution(self, x: torch.Tensor) -> torch.Tensor:
        """The full-resolution path on (N, 1, H, W) sides that are multiples of arch.multiple, neither
        padded nor clamped (a clamp passes no gradient where an untrained output leaves [0, 1])."""
        return self._through(self.encoders[-1], x)

    def denoiser(self) -> Denoiser:
        """The full-resolution inference path, sharing this network's weights."""
        return Denoiser(self.encoders[-1], self.decoder, self.arch.multiple, self.arch.space_to_depth)

    def load_denoiser_weights(self, state: dict[str, torch.Tensor]) -> None:
        """Start every encoder from a trained full-resolution encoder, and the decoder from its own."""
        enc = {k[len("encoder."):]: v for k, v in state.items() if k.startswith("encoder.")}
        dec = {k[len("decoder."):]: v for k, v in state.items() if k.startswith("decoder.")}
        for encoder in self.encoders:
            missing, unexpected = encoder.load_state_dict(enc, strict=False)
            if unexpected or any(not k.startswith("stem.") for k in missing):
                raise RuntimeError(f"encoder weights do not fit: missing {missing}, unexpected {unexpected}")
        self.decoder.load_state_dict(dec)
