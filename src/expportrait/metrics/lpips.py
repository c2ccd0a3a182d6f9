"""LPIPS (Zhang et al. 2018, version 0.1) in plain torch, with user-supplied weights.

No backbone weights ship offline (offline-resources section 3), so both files come from the user:

- ``backbone``: the torchvision ImageNet checkpoint, loaded with ``torch.load(weights_only=True)``:
  ``alexnet-owt-7be5be79.pth`` (net="alex") or ``vgg16-397923af.pth`` (net="vgg"). Only the
  ``features.*`` tensors are used; ``classifier.*`` tensors may be present and are ignored.
  The trunks below are written so their parameter names equal torchvision's ``features.<i>.*``.
- ``heads``: the ``lpips`` package's linear heads, ``lpips/weights/v0.1/{alex,vgg}.pth``,
  keys ``lin{0..4}.model.1.weight`` of shape (1, C_k, 1, 1).

Maths (as in the reference implementation): inputs in [-1, 1] are shifted/scaled by the
ScalingLayer constants; five ReLU feature maps are taken from the trunk, each unit-normalised over
channels (eps 1e-10); the squared difference is weighted per channel by the head (a 1x1 conv),
averaged over space and summed over the five layers.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from expportrait.errors import UserError
from expportrait.metrics.image import to_unit_float

# net -> (conv specs (in, out, kernel, stride, padding) or "M" for max-pool, tap indices into `features`)
_ALEX = ([(3, 64, 11, 4, 2), "M", (64, 192, 5, 1, 2), "M", (192, 384, 3, 1, 1), (384, 256, 3, 1, 1),
          (256, 256, 3, 1, 1), "M"], (1, 4, 7, 9, 11))
_VGG16 = ([(3, 64, 3, 1, 1), (64, 64, 3, 1, 1), "M", (64, 128, 3, 1, 1), (128, 128, 3, 1, 1), "M",
           (128, 256, 3, 1, 1), (256, 256, 3, 1, 1), (256, 256, 3, 1, 1), "M",
           (256, 512, 3, 1, 1), (512, 512, 3, 1, 1), (512, 512, 3, 1, 1), "M",
           (512, 512, 3, 1, 1), (512, 512, 3, 1, 1), (512, 512, 3, 1, 1), "M"], (3, 8, 15, 22, 29))
NETS = {"alex": _ALEX, "vgg": _VGG16}
SHIFT = (-0.030, -0.088, -0.188)
SCALE = (0.458, 0.448, 0.450)


def build_features(net: str) -> tuple[nn.Sequential, tuple[int, ...], list[int]]:
    """torchvision-layout ``features`` trunk -> (module, tap indices, channels at each tap)."""
    if net not in NETS:
        raise UserError(f"unknown LPIPS net '{net}' (choose from {sorted(NETS)})")
    spec, taps = NETS[net]
    layers: list[nn.Module] = []
    for item in spec:
        if item == "M":
            # AlexNet pools 3x3 stride 2; VGG pools 2x2 stride 2 (as in torchvision)
            layers.append(nn.MaxPool2d(3, 2) if net == "alex" else nn.MaxPool2d(2, 2))
        else:
            cin, cout, k, s, p = item
            layers += [nn.Conv2d(cin, cout, k, s, p), nn.ReLU(inplace=False)]
    channels = [layers[t - 1].out_channels for t in taps]  # tap t is the ReLU after conv t-1
    return nn.Sequential(*layers), taps, channels


class _Head(nn.Module):
    """lpips' NetLinLayer: ``model = Sequential(Dropout(), Conv2d(C, 1, 1, bias=False))``."""

    def __init__(self, channels: int):
        super().__init__()
        self.model = nn.Sequential(nn.Identity(), nn.Conv2d(channels, 1, 1, bias=False))

    def forward(self, x: Tensor) -> Tensor:
        return self.model(x)


class LPIPS(nn.Module):
    """LPIPS distance. ``forward(a, b)``: (B, 3, H, W) in [-1, 1] -> (B,) distances (>= 0)."""

    def __init__(self, net: str = "alex"):
        super().__init__()
        self.net = net
        self.features, self.taps, channels = build_features(net)
        for i, c in enumerate(channels):
            self.add_module(f"lin{i}", _Head(c))
        self.register_buffer("shift", torch.tensor(SHIFT).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("scale", torch.tensor(SCALE).view(1, 3, 1, 1), persistent=False)
        self.requires_grad_(False).eval()

    @classmethod
    def from_files(cls, backbone: str | Path, heads: str | Path, net: str = "alex") -> "LPIPS":
        """Load a torchvision backbone checkpoint and lpips v0.1 heads (both strict; see module doc)."""
        model = cls(net)
        trunk = _load_tensors(backbone, "LPIPS backbone")
        feats = {k[len("features."):]: v for k, v in trunk.items() if k.startswith("features.")}
        other = [k for k in trunk if not k.startswith(("features.", "classifier."))]
        if other:
            raise UserError(f"{backbone}: not a torchvision {net} checkpoint (unexpected keys {other[:3]})")
        _load_strict(model.features, feats, backbone, f"torchvision {net} 'features.*'")
        head_sd = _load_tensors(heads, "LPIPS heads")
        expected = {f"lin{i}.model.1.weight" for i in range(len(model.taps))}
        if set(head_sd) != expected:
            raise UserError(f"{heads}: not lpips v0.1 '{net}' heads (expected keys lin0..lin4.model.1.weight,"
                            f" got {sorted(head_sd)[:5]})")
        for i in range(len(model.taps)):
            _load_strict(getattr(model, f"lin{i}"), {"model.1.weight": head_sd[f"lin{i}.model.1.weight"]},
                         heads, f"lpips '{net}' heads")
        return model

    def forward(self, a: Tensor, b: Tensor) -> Tensor:
        """a, b: (B, 3, H, W) in [-1, 1] (H, W >= 32) -> (B,) LPIPS."""
        x = torch.cat([a, b], 0)  # (2B, 3, H, W)
        x = (x - self.shift) / self.scale
        total = 0.0
        taps = set(self.taps)
        k = 0
        for i, layer in enumerate(self.features):
            if i > self.taps[-1]:
                break
            x = layer(x)
            if i in taps:
                f = x / (torch.sqrt((x ** 2).sum(1, keepdim=True)) + 1e-10)  # (2B, C, h, w) unit over C
                fa, fb = f.chunk(2, 0)
                d = getattr(self, f"lin{k}")((fa - fb) ** 2)  # (B, 1, h, w)
                total = total + d.mean(dim=(1, 2, 3))  # (B,)
                k += 1
        return total

    @torch.no_grad()
    def video(self, a: np.ndarray, b: np.ndarray, batch: int = 8) -> np.ndarray:
        """a, b: (F, H, W, 3) uint8 or float [0, 1] videos -> (F,) per-frame LPIPS (float64)."""
        a, b = to_unit_float(a), to_unit_float(b)
        if a.shape != b.shape:
            raise UserError(f"videos differ in shape: {a.shape} vs {b.shape}")
        if min(a.shape[1:3]) < 32:
            raise UserError(f"LPIPS needs frames of at least 32x32 pixels, got {a.shape[2]}x{a.shape[1]}")
        out = []
        for s in range(0, len(a), batch):
            ta = torch.from_numpy(a[s:s + batch]).float().permute(0, 3, 1, 2) * 2 - 1  # (b, 3, H, W)
            tb = torch.from_numpy(b[s:s + batch]).float().permute(0, 3, 1, 2) * 2 - 1
            out.append(self(ta, tb).double().numpy())
        return np.concatenate(out)


def _load_tensors(path: str | Path, what: str) -> dict[str, Tensor]:
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{what} file not found: {path}")
    try:
        sd = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unpickling/format failure is bad user input
        raise UserError(f"{path}: cannot load {what} with torch.load(weights_only=True): "
                        f"{str(exc).splitlines()[0][:200]}") from None
    if not isinstance(sd, dict) or not all(isinstance(v, Tensor) for v in sd.values()):
        raise UserError(f"{path}: {what} must be a state dict of tensors")
    return sd


def _load_strict(module: nn.Module, sd: dict[str, Tensor], path, what: str) -> None:
    own = module.state_dict()
    missing = sorted(set(own) - set(sd))
    unexpected = sorted(set(sd) - set(own))
    if missing or unexpected:
        raise UserError(f"{path}: not a {what} file (missing {missing[:3]}, unexpected {unexpected[:3]})")
    bad = [k for k in own if tuple(own[k].shape) != tuple(sd[k].shape)]
    if bad:
        k = bad[0]
        raise UserError(f"{path}: {what} tensor '{k}' has shape {tuple(sd[k].shape)}, expected {tuple(own[k].shape)}")
    module.load_state_dict({k: v.float() for k, v in sd.items()}, strict=True)
