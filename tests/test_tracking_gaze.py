"""Gaze: eyeball meshes, iris-landmark round trip, normal maps show the eye rotation."""
from __future__ import annotations

import math

import pytest
import torch

from expportrait.head.eyes import (append_eyes, axis_angle_to_direction, direction_to_axis_angle,
                                   eyeball_template)
from expportrait.tracking.gaze import estimate_gaze, synthetic_iris_points
from expportrait.tracking.visualize import render_normals
from expportrait.transfer.synthetic import SyntheticConfig, SyntheticWorld


@pytest.fixture(scope="module")
def fit(head):
    world = SyntheticWorld(head, SyntheticConfig(frames=4))
    f = world.make_fit(torch.Generator().manual_seed(0), 4)
    f.rotation = torch.tensor([[0.0, 0.0, 0.0], [0.0, 0.35, 0.0], [0.2, -0.25, 0.05], [-0.1, 0.1, 0.0]])
    return f


def _gaze():
    yaw = torch.tensor([[0.0, 0.0], [0.3, 0.3], [-0.25, -0.2], [0.15, 0.1]])
    pitch = torch.tensor([[0.0, 0.0], [0.1, 0.1], [-0.15, -0.15], [0.2, 0.25]])
    d = torch.stack([torch.sin(yaw) * torch.cos(pitch), torch.sin(pitch), torch.cos(yaw) * torch.cos(pitch)], -1)
    return direction_to_axis_angle(d)  # (4, 2, 3)


def _angle(a, b):
    da, db = axis_angle_to_direction(a), axis_angle_to_direction(b)
    return torch.rad2deg(torch.acos((da * db).sum(-1).clamp(-1, 1)))


def test_eyeball_mesh_is_closed_and_outward():
    v, f = eyeball_template()
    c = (v[f[:, 0]] + v[f[:, 1]] + v[f[:, 2]]) / 3
    n = torch.cross(v[f[:, 1]] - v[f[:, 0]], v[f[:, 2]] - v[f[:, 0]], dim=-1)
    assert ((n * c).sum(-1) > 0).all()
    edges = torch.cat([f[:, [0, 1]], f[:, [1, 2]], f[:, [2, 0]]]).sort(1).values
    _, counts = torch.unique(edges, dim=0, return_counts=True)
    assert (counts == 2).all()  # watertight
    assert v[0, 2] > v[:, 2].max() - 1e-9 and v[0, 2] > 0.0125  # cornea bulges in front


def test_direction_round_trip():
    g = _gaze()
    assert torch.allclose(direction_to_axis_angle(axis_angle_to_direction(g)), g, atol=1e-5)
    d = axis_angle_to_direction(torch.tensor([0.0, 0.3, 0.0]))
    assert d[0] > 0  # +yaw looks towards the subject's left (+x)


def test_gaze_round_trip_from_iris_landmarks(head, fit):
    gaze = _gaze()
    pts = synthetic_iris_points(head, fit, gaze)
    est = estimate_gaze(pts, head, fit)
    assert est.shape == (4, 2, 3)
    assert _angle(est, gaze).max() < 0.5
    # a detector that sees the whole face shifted, scaled and rotated in the image: the
    # similarity normalisation to the eye corners removes it (up to perspective)
    a = 0.03
    Rm = torch.tensor([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])
    moved = (pts - 128) @ Rm.T * 1.04 + 128 + torch.tensor([3.0, -2.0])
    assert _angle(estimate_gaze(moved, head, fit), gaze).max() < 2.0
    # wrong gaze is detected as wrong
    assert _angle(estimate_gaze(synthetic_iris_points(head, fit, -gaze), head, fit), gaze).max() > 20


def test_normal_map_shows_eye_rotation(head, fit):
    f = fit.frames(slice(0, 1))
    verts = torch.zeros(1, 10, 3)
    lmk = head(f.shape[None], f.expression).landmarks
    v2, faces = append_eyes(verts, torch.zeros(0, 3, dtype=torch.long), lmk, None)
    assert v2.shape[1] == 10 + 2 * eyeball_template()[0].shape[0] and faces.min() >= 10
    f.gaze = torch.zeros(1, 2, 3)
    straight = render_normals(head, f, size=(256, 256))
    f.gaze[:, :, 1] = 0.4
    turned = render_normals(head, f, size=(256, 256))
    no_eyes = render_normals(head, f, eyes=False, size=(256, 256))
    eye_px = (straight != no_eyes).any(-1)
    assert eye_px.sum() > 20                                      # eyes visible through the openings
    assert (straight != turned).any(-1)[eye_px].mean() > 0.2  # and their rotation shows
