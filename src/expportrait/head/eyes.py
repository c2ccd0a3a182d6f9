"""Eyeball meshes placed behind the eye openings of a head mesh, rotated by gaze.

Each eye is a sphere of radius ``radius`` (about 12 mm) whose front cap (the cornea over the
iris, half-angle ``iris_angle``) bulges out by ``cornea_bulge``, so that the iris edge and the eye
rotation show in rendered normal maps. At zero gaze the eye looks along head +z.

Placement: the eyeball centre lies behind the mean of the six iBUG eye landmarks (right eye
36-41, left eye 42-47) by ``radius + cornea_bulge + recess``, so the cornea apex sits just behind
the eyelid opening (the head meshes have open eyes).

gaze: (B, 2, 3) axis-angle in head space, eye 0 = the subject's right eye (MediaPipe iris 468,
iBUG 36-41), eye 1 = the left eye (iris 473, iBUG 42-47). Rotating +z to a direction d uses the
minimal rotation (no torsion): looking towards the subject's left is +x, up is +y.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from expportrait.head.geometry import axis_angle_to_matrix

EYE_LANDMARKS = ((36, 37, 38, 39, 40, 41), (42, 43, 44, 45, 46, 47))  # right, left (iBUG-68)


@dataclass(frozen=True)
class EyeConfig:
    radius: float = 0.012        # eyeball radius, metres
    iris_angle: float = 0.46     # half-angle of the iris / cornea cap, radians (iris radius ~5.3 mm)
    cornea_bulge: float = 0.0015  # extra height of the cap at its centre, metres
    recess: float = 0.001        # cornea apex behind the mean eye landmark, metres
    rings: int = 14              # latitude rings of the sphere mesh
    segments: int = 20           # longitude segments


def eyeball_template(cfg: EyeConfig = EyeConfig()) -> tuple[Tensor, Tensor]:
    """One eyeball centred at the origin looking along +z -> (verts (V_e, 3) metres, faces (T_e, 3)),
    counter-clockwise seen from outside."""
    # polar angles from the front pole: denser over the cap, one ring exactly at the iris edge
    cap = torch.linspace(0.0, cfg.iris_angle, 5)[1:]
    rest = torch.linspace(cfg.iris_angle, math.pi, cfg.rings - 2)[1:-1]
    theta = torch.cat([cap, rest])                                       # (R,)
    phi = torch.arange(cfg.segments) * (2 * math.pi / cfg.segments)      # (S,)
    r = cfg.radius + cfg.cornea_bulge * (1 - (theta / cfg.iris_angle) ** 2).clamp_min(0.0)
    ring = torch.stack([(r * theta.sin())[:, None] * phi.cos(), (r * theta.sin())[:, None] * phi.sin(),
                        (r * theta.cos())[:, None].expand(-1, cfg.segments)], -1)  # (R, S, 3)
    front = torch.tensor([[0.0, 0.0, cfg.radius + cfg.cornea_bulge]])
    back = torch.tensor([[0.0, 0.0, -cfg.radius]])
    verts = torch.cat([front, ring.reshape(-1, 3), back])
    R, S = theta.shape[0], cfg.segments
    idx = lambda i, j: 1 + i * S + (j % S)  # noqa: E731
    faces = [(0, idx(0, j), idx(0, j + 1)) for j in range(S)]
    for i in range(R - 1):
        for j in range(S):
            a, b, c, d = idx(i, j), idx(i, j + 1), idx(i + 1, j), idx(i + 1, j + 1)
            faces += [(a, c, b), (b, c, d)]
    last = len(verts) - 1
    faces += [(last, idx(R - 1, j + 1), idx(R - 1, j)) for j in range(S)]
    faces = torch.tensor(faces, dtype=torch.long)
    # orient outward: flip any face whose normal points towards the centre
    v0, v1, v2 = verts[faces[:, 0]], verts[faces[:, 1]], verts[faces[:, 2]]
    inward = (torch.cross(v1 - v0, v2 - v0, dim=-1) * (v0 + v1 + v2)).sum(-1) < 0
    faces[inward] = faces[inward][:, [0, 2, 1]]
    return verts, faces


def eye_centres(landmarks: Tensor, cfg: EyeConfig = EyeConfig()) -> Tensor:
    """landmarks (B, 68, 3) head-space iBUG points of the (detailed) mesh -> (B, 2, 3) eyeball
    centres (right, left), metres."""
    mean = torch.stack([landmarks[:, list(ids)].mean(1) for ids in EYE_LANDMARKS], 1)  # (B, 2, 3)
    back = cfg.radius + cfg.cornea_bulge + cfg.recess
    return mean - landmarks.new_tensor([0.0, 0.0, back])


def iris_depth(cfg: EyeConfig = EyeConfig()) -> float:
    """Distance from the eyeball centre to the centre of the iris disc (the limbus plane)."""
    return cfg.radius * math.cos(cfg.iris_angle)


def eyeball_vertices(centres: Tensor, gaze: Tensor | None, cfg: EyeConfig = EyeConfig()
                     ) -> tuple[Tensor, Tensor]:
    """centres (B, 2, 3), gaze (B, 2, 3) axis-angle or None (straight ahead)
    -> (verts (B, 2 V_e, 3) head space, faces (2 T_e, 3) indexed from 0)."""
    tv, tf = eyeball_template(cfg)
    tv = tv.to(centres)
    B = centres.shape[0]
    if gaze is None:
        rot = torch.eye(3, dtype=centres.dtype, device=centres.device).expand(B, 2, 3, 3)
    else:
        rot = axis_angle_to_matrix(gaze.to(centres))                           # (B, 2, 3, 3)
    verts = torch.einsum("beij,vj->bevi", rot, tv) + centres[:, :, None]       # (B, 2, V_e, 3)
    faces = torch.cat([tf, tf + tv.shape[0]]).to(centres.device)
    return verts.reshape(B, -1, 3), faces


def append_eyes(verts: Tensor, faces: Tensor, landmarks: Tensor, gaze: Tensor | None,
                cfg: EyeConfig = EyeConfig()) -> tuple[Tensor, Tensor]:
    """Add both eyeballs to a head mesh. verts (B, N, 3) head space, faces (T, 3), landmarks
    (B, 68, 3) of the same mesh, gaze (B, 2, 3) or None -> (verts (B, N + 2 V_e, 3), faces)."""
    ev, ef = eyeball_vertices(eye_centres(landmarks, cfg), gaze, cfg)
    return torch.cat([verts, ev], 1), torch.cat([faces.to(ef), ef + verts.shape[1]])


def direction_to_axis_angle(d: Tensor) -> Tensor:
    """Unit gaze directions (..., 3) head space -> (..., 3) minimal rotation taking +z to d."""
    d = torch.nn.functional.normalize(d, dim=-1)
    z = torch.zeros_like(d)
    z[..., 2] = 1.0
    axis = torch.cross(z, d, dim=-1)                                   # (..., 3), |axis| = sin
    s = axis.norm(dim=-1, keepdim=True)
    angle = torch.atan2(s, d[..., 2:3])
    return torch.where(s > 1e-9, axis / s.clamp_min(1e-12) * angle, torch.zeros_like(axis))


def axis_angle_to_direction(aa: Tensor) -> Tensor:
    """(..., 3) eye rotation -> (..., 3) unit gaze direction (rotated +z)."""
    return axis_angle_to_matrix(aa)[..., :, 2]
