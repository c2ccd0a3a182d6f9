"""Stateless parametric head models (BFM embedded default; FLAME / SMPL-X from user files).

``load_head(kind, model_path, density)`` -> ``HeadModel``; ``model(shape, expression, jaw)``
-> ``HeadOutput(coarse, dense, landmarks)`` in head space (x = subject's left, y up, z out of the
face, metres). Geometry helpers shared with other layers live in ``head.geometry``.
"""
from expportrait.head.base import HeadModel, HeadOutput, load_head

__all__ = ["HeadModel", "HeadOutput", "load_head"]
