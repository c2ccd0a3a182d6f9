"""Optional nvdiffrast backend for ``rasterize`` (CUDA only; same outputs and conventions).

nvdiffrast is not a dependency: it is imported lazily and only used when ``backend="nvdiffrast"``
or ``backend="auto"`` with CUDA tensors and an importable ``nvdiffrast.torch``.

Pixel -> clip space: nvdiffrast's pixel (i, j) has its centre at NDC x = 2 (i + 0.5) / W - 1 and
NDC y = 2 (j + 0.5) / H - 1, and image row 0 is NDC y = -1 (no flip needed: our row 0 is the top
image row, pixel y = 0). With our pixel coordinates (centres at integers) and camera depth z:
clip = (ndc_x z, ndc_y z, z_clip, z), where z_clip is an OpenGL perspective depth between a
near/far pair that brackets the mesh, so the hardware z-test orders by camera depth.
nvdiffrast returns (u, v, z/w, face + 1) with perspective-correct weights (u, v, 1 - u - v) for
vertices (0, 1, 2); these are exactly our ``bary`` and give ``depth = bary . z``.
"""
from __future__ import annotations

import importlib
import importlib.util

import torch
from torch import Tensor

from expportrait.errors import UserError

_BACKENDS = ("auto", "torch", "nvdiffrast")
_CONTEXTS: dict = {}


def available() -> bool:
    """True when ``nvdiffrast.torch`` can be imported (it is never installed by this project)."""
    try:
        return importlib.util.find_spec("nvdiffrast") is not None and _module() is not None
    except Exception:  # broken / partial installs count as absent
        return False


def _module():
    return importlib.import_module("nvdiffrast.torch")


def select_backend(backend: str, screen: Tensor) -> str:
    """Resolve "auto" | "torch" | "nvdiffrast" to the backend that will run."""
    if backend not in _BACKENDS:
        raise UserError(f"unknown render backend '{backend}' (choose from {', '.join(_BACKENDS)})")
    if backend == "torch":
        return "torch"
    if backend == "auto":
        return "nvdiffrast" if screen.is_cuda and available() else "torch"
    if not available():
        raise UserError("render backend 'nvdiffrast' requested but `import nvdiffrast.torch` fails "
                        "(install nvdiffrast from github.com/NVlabs/nvdiffrast, or use backend='torch')")
    if not screen.is_cuda:
        raise UserError("render backend 'nvdiffrast' needs CUDA tensors (use backend='torch' on CPU)")
    return "nvdiffrast"


def screen_to_clip(screen: Tensor, height: int, width: int) -> Tensor:
    """screen (B, V, 3) pixel x, pixel y, camera z -> (B, V, 4) nvdiffrast clip coordinates."""
    x, y, z = screen.unbind(-1)                                    # (B, V) each
    zd = z.detach()
    near = (zd.amin() * 0.5).clamp_min(1e-4)
    far = zd.amax() * 2.0 + near
    ndc_x = 2.0 * (x + 0.5) / width - 1.0
    ndc_y = 2.0 * (y + 0.5) / height - 1.0
    z_clip = z * (far + near) / (far - near) - 2.0 * far * near / (far - near)
    return torch.stack([ndc_x * z, ndc_y * z, z_clip, z], -1)     # (B, V, 4)


def rasterize_nvdiffrast(screen: Tensor, faces: Tensor, height: int, width: int):
    """Same contract as ``rasterize.rasterize`` (see there), computed by nvdiffrast on CUDA."""
    from expportrait.render.rasterize import Fragments

    dr = _module()
    dev = screen.device
    if dev not in _CONTEXTS:
        _CONTEXTS[dev] = dr.RasterizeCudaContext(device=dev)
    clip = screen_to_clip(screen.float(), height, width).contiguous()
    rast, _ = dr.rasterize(_CONTEXTS[dev], clip, faces.to(torch.int32).contiguous(),
                           resolution=[height, width])            # (B, H, W, 4)
    face_id = rast[..., 3].round().long() - 1                     # (B, H, W), -1 background
    cov = (face_id >= 0).to(rast.dtype)
    u, v = rast[..., 0], rast[..., 1]
    bary = torch.stack([u, v, 1.0 - u - v], -1) * cov[..., None]  # (B, H, W, 3)
    B = screen.shape[0]
    fz = screen[..., 2][torch.arange(B, device=dev)[:, None, None, None], faces[face_id.clamp(min=0)]]
    depth = (bary * fz).sum(-1)                                   # (B, H, W), 0 on background
    return Fragments(face_id=face_id, bary=bary.to(screen.dtype), depth=depth)
