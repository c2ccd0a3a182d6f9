"""Mesh geometry helpers shared by head, render, tracking and transfer (pure torch)."""
from __future__ import annotations

import torch
from torch import Tensor

# head space (x left-of-subject, y up, z out of face) -> OpenCV camera axes (x right, y down, z fwd)
HEAD_TO_CV = torch.tensor([[1.0, 0.0, 0.0], [0.0, -1.0, 0.0], [0.0, 0.0, -1.0]])


def axis_angle_to_matrix(aa: Tensor) -> Tensor:
    """Rodrigues. aa: (..., 3) axis-angle radians -> (..., 3, 3). Smooth at zero."""
    theta2 = (aa * aa).sum(-1, keepdim=True)[..., None]  # (..., 1, 1)
    theta = torch.sqrt(theta2 + 1e-12)
    k = skew(aa)
    small = theta2 < 1e-8
    a = torch.where(small, 1.0 - theta2 / 6.0, torch.sin(theta) / theta)
    b = torch.where(small, 0.5 - theta2 / 24.0, (1.0 - torch.cos(theta)) / theta2.clamp_min(1e-12))
    eye = torch.eye(3, dtype=aa.dtype, device=aa.device).expand(k.shape)
    return eye + a * k + b * (k @ k)


def matrix_to_axis_angle(R: Tensor) -> Tensor:
    """(..., 3, 3) rotation -> (..., 3) axis-angle (angles below pi)."""
    cos = ((R[..., 0, 0] + R[..., 1, 1] + R[..., 2, 2] - 1.0) / 2.0).clamp(-1 + 1e-7, 1 - 1e-7)
    theta = torch.acos(cos)
    v = torch.stack([R[..., 2, 1] - R[..., 1, 2], R[..., 0, 2] - R[..., 2, 0],
                     R[..., 1, 0] - R[..., 0, 1]], -1)
    scale = torch.where(theta[..., None] < 1e-4, torch.full_like(v[..., :1], 0.5),
                        theta[..., None] / (2.0 * torch.sin(theta[..., None])))
    return v * scale


def skew(v: Tensor) -> Tensor:
    """(..., 3) -> (..., 3, 3) cross-product matrix."""
    z = torch.zeros_like(v[..., 0])
    return torch.stack([torch.stack([z, -v[..., 2], v[..., 1]], -1),
                        torch.stack([v[..., 2], z, -v[..., 0]], -1),
                        torch.stack([-v[..., 1], v[..., 0], z], -1)], -2)


def euler_to_axis_angle(yaw: Tensor, pitch: Tensor, roll: Tensor) -> Tensor:
    """Head-space Euler angles (radians; yaw about y, pitch about x, roll about z) -> (..., 3)."""
    ry = axis_angle_to_matrix(torch.stack([torch.zeros_like(yaw), yaw, torch.zeros_like(yaw)], -1))
    rx = axis_angle_to_matrix(torch.stack([pitch, torch.zeros_like(pitch), torch.zeros_like(pitch)], -1))
    rz = axis_angle_to_matrix(torch.stack([torch.zeros_like(roll), torch.zeros_like(roll), roll], -1))
    return matrix_to_axis_angle(ry @ rx @ rz)


def matrix_to_euler(R: Tensor) -> Tensor:
    """(..., 3, 3) = Ry(yaw) Rx(pitch) Rz(roll) -> (..., 3) (yaw, pitch, roll) radians."""
    pitch = torch.asin((-R[..., 1, 2]).clamp(-1.0, 1.0))
    yaw = torch.atan2(R[..., 0, 2], R[..., 2, 2])
    roll = torch.atan2(R[..., 1, 0], R[..., 1, 1])
    return torch.stack([yaw, pitch, roll], -1)


def head_to_camera(verts: Tensor, rotation: Tensor, translation: Tensor) -> Tensor:
    """verts (B, V, 3) head space; rotation (B, 3) axis-angle; translation (B, 3) metres
    -> (B, V, 3) OpenCV camera space: X_cam = HEAD_TO_CV @ R @ X + t."""
    R = HEAD_TO_CV.to(verts) @ axis_angle_to_matrix(rotation)  # (B, 3, 3)
    return verts @ R.transpose(1, 2) + translation[:, None, :]


def face_normals(verts: Tensor, faces: Tensor) -> Tensor:
    """verts (B, V, 3), faces (T, 3) -> (B, T, 3) unnormalised (area-weighted) normals."""
    v0, v1, v2 = verts[:, faces[:, 0]], verts[:, faces[:, 1]], verts[:, faces[:, 2]]
    return torch.cross(v1 - v0, v2 - v0, dim=-1)


def vertex_normals(verts: Tensor, faces: Tensor) -> Tensor:
    """verts (B, V, 3), faces (T, 3) counter-clockwise seen from outside -> (B, V, 3) unit normals."""
    B, V, _ = verts.shape
    fn = face_normals(verts, faces)  # (B, T, 3)
    offs = (torch.arange(B, device=verts.device) * V)[:, None]  # flatten to (B*V, 3): index_add on dim 0 is faster
    vn = torch.zeros(B * V, 3, dtype=verts.dtype, device=verts.device)
    for k in range(3):
        vn = vn.index_add(0, (faces[:, k][None] + offs).reshape(-1), fn.reshape(-1, 3))
    return torch.nn.functional.normalize(vn.reshape(B, V, 3), dim=-1, eps=1e-12)


def uniform_laplacian(faces: Tensor, num_verts: int) -> Tensor:
    """Sparse (V, V) uniform graph Laplacian L = I - D^-1 A of the triangle edges (float32)."""
    e = torch.cat([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]], 0).long()
    # directed edges deduplicated as int64 keys (sorted like unique(dim=0), which took 0.65 s of
    # every carphone fit)
    key = torch.unique(torch.cat([e[:, 0] * num_verts + e[:, 1], e[:, 1] * num_verts + e[:, 0]]))
    e = torch.stack([key // num_verts, key % num_verts], 1)                        # (E, 2)
    deg = torch.bincount(e[:, 0], minlength=num_verts).clamp_min(1).float()
    vals = -1.0 / deg[e[:, 0]]
    idx = torch.cat([e.T, torch.arange(num_verts).repeat(2, 1)], 1)
    vals = torch.cat([vals, torch.ones(num_verts)])
    return torch.sparse_coo_tensor(idx, vals, (num_verts, num_verts), check_invariants=False).coalesce()


def apply_laplacian(L: Tensor, x: Tensor) -> Tensor:
    """L sparse (V, V); x (B, V, C) -> (B, V, C)."""
    B, V, C = x.shape
    y = torch.sparse.mm(L, x.permute(1, 0, 2).reshape(V, B * C))
    return y.reshape(V, B, C).permute(1, 0, 2)
