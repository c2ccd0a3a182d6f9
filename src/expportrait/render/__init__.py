"""Differentiable rendering in pure PyTorch (optional nvdiffrast backend on CUDA).

``render(verts_cam, faces, camera, H, W)`` -> ``RenderOutput`` (normal / depth / mask / shaded /
soft_mask maps). Lower level: ``expportrait.render.rasterize.rasterize`` -> ``Fragments``, then
``interpolate``; SH lighting in ``shading``; pinhole camera helpers in ``camera``. The function
``rasterize`` is deliberately not re-exported here: it would shadow the ``render.rasterize``
submodule (import it with ``from expportrait.render.rasterize import rasterize``).
"""
from expportrait.render.camera import default_camera, project, to_screen
from expportrait.render.maps import RenderOutput, normal_map_image, render
from expportrait.render.rasterize import Fragments, interpolate, soft_silhouette
from expportrait.render.shading import default_sh, sh_basis, sh_shading

__all__ = ["Fragments", "RenderOutput", "default_camera", "default_sh", "interpolate",
           "normal_map_image", "project", "render", "sh_basis", "sh_shading",
           "soft_silhouette", "to_screen"]
