"""Measuring code shared by several benchmarks (imported as a sibling module, like ``common``):

- ``value``: one entry of a ``metrics.report.evaluate`` report (reenact.py, vae.py);
- ``vae_ceilings``, ``down_up``: what a perfect generator could reach through a VAE, and crops at
  a lower resolution (reenact.py, vae.py);
- ``mouth_opening``, ``yaw_ratio``, ``pearson``: dlib-landmark measures of expression and pose
  (unseen.py, transfer_real.py);
- ``place_in_view``, ``bench_renderer``, ``ModernGLPass``: the torch renderer timed against moderngl
  (EGL) on one mesh (renderer.py, tracking.py).
"""
from __future__ import annotations

import numpy as np
import torch

from common import repeat_time


# ---------------------------------------------------------------------------- reports
def value(report: dict, key: str, field: str = "value"):
    """``report[key][field]`` of a ``metrics.report.evaluate`` report, None where not computed."""
    entry = report.get(key, {})
    return entry.get(field) if entry.get("computed") else None


# ---------------------------------------------------------------------------- VAE ceilings
def vae_ceilings(vae, clip, feather, real_crops, boxes, frame0, real_frames, ref_crop, cross_boxes,
                 cross_background, astronaut):
    """What a perfect generator could reach through ``vae``: the real self crops encoded and
    decoded in clips of ``clip`` frames (the generator's length) and each alone -> face-crop and
    full-frame PSNR, and the pasted frames (``vae_frames``, ``vae_frame_frames``); the astronaut's
    reference crop held still for one clip, decoded and pasted into ``cross_background`` ((1, H, W,
    3), the pipeline's background) -> dlib face-found / same-person fractions against the
    ``astronaut`` image (H, W, 3)."""
    from expportrait.data.crop import paste_back
    from expportrait.generator.longvideo import _frames_uint8, _unit
    from expportrait.generator.vae import decode_latents, encode_video
    from expportrait.metrics.identity import identity_similarity
    from expportrait.metrics.image import psnr

    def through_vae(crops):                                   # (F, S, S, 3) uint8, F = 4k+1
        x = _unit(crops).permute(1, 0, 2, 3)[None]              # (1, 3, F, S, S)
        with torch.no_grad():
            return _frames_uint8(decode_latents(vae, encode_video(vae, x))[0])

    F, rec = len(real_crops), []
    for a in range(0, F, clip):
        chunk = real_crops[a:a + clip]
        pad = (-(len(chunk) - 1)) % 4
        chunk = np.concatenate([chunk, np.repeat(chunk[-1:], pad, 0)])
        rec.append(through_vae(chunk)[:min(clip, F - a)])
    rec = np.concatenate(rec)
    alone = np.concatenate([through_vae(real_crops[i:i + 1]) for i in range(F)])   # image latents
    k = min(clip, len(cross_boxes))                           # --max-frames may cut below one clip
    still = through_vae(np.repeat(ref_crop[None], clip, 0))[:k]
    pasted = paste_back(cross_background, still, cross_boxes[:k], feather)
    ident = identity_similarity(pasted, astronaut).summary()
    rec_frames = paste_back(frame0, rec, boxes, feather)
    return {"vae_crop_psnr": psnr(rec, real_crops).mean, "vae_frames": rec_frames,
            "vae_frame_frames": paste_back(frame0, alone, boxes, feather),
            "vae_psnr": psnr(rec_frames, real_frames).mean,
            "vae_cross_found": ident["face_found_fraction"], "vae_cross_same": ident["same_person_fraction"]}


def down_up(crops: np.ndarray, px: int) -> np.ndarray:
    """(F, S, S, 3) uint8 crops -> the same crops at ``px`` pixels (area) and back (bilinear)."""
    import cv2
    S = crops.shape[1]
    return np.stack([cv2.resize(cv2.resize(c, (px, px), interpolation=cv2.INTER_AREA), (S, S),
                                interpolation=cv2.INTER_LINEAR) for c in crops])


# ---------------------------------------------------------------------------- dlib measures
def mouth_opening(lmk: np.ndarray) -> np.ndarray:
    """(F, 68, 2) dlib landmarks -> (F,) inner-lip gap / outer-eye-corner distance (NaN rows stay)."""
    gap = np.linalg.norm(lmk[:, [61, 62, 63]] - lmk[:, [67, 66, 65]], axis=-1).mean(1)
    return gap / np.linalg.norm(lmk[:, 36] - lmk[:, 45], axis=-1)


def yaw_ratio(lmk: np.ndarray) -> np.ndarray:
    """(F, 68, 2) -> (F,) (dl - dr) / (dl + dr): nose tip 30 to the left (0-2) and right (14-16)
    face edges; 0 frontal, about sin(yaw)."""
    dl = np.linalg.norm(lmk[:, 30] - lmk[:, 0:3].mean(1), axis=-1)
    dr = np.linalg.norm(lmk[:, 14:17].mean(1) - lmk[:, 30], axis=-1)
    return (dl - dr) / (dl + dr)


def pearson(a: np.ndarray, b: np.ndarray) -> float | None:
    """Pearson correlation over the frames finite in both (None if < 3 or constant)."""
    ok = np.isfinite(a) & np.isfinite(b)
    if ok.sum() < 3 or np.std(a[ok]) == 0 or np.std(b[ok]) == 0:
        return None
    return float(np.corrcoef(a[ok], b[ok])[0, 1])


# ---------------------------------------------------------------------------- renderer timing
_VS = """
#version 330
uniform vec2 size;
uniform vec2 nf;
in vec3 in_pos;
in vec3 in_nrm;
out vec4 v_val;
void main() {
    float z = in_pos.z;
    float n = nf.x, f = nf.y;
    vec2 ndc = 2.0 * (in_pos.xy + 0.5) / size - 1.0;
    gl_Position = vec4(ndc * z, z * (f + n) / (f - n) - 2.0 * f * n / (f - n), z);
    v_val = vec4(in_nrm, z);
}
"""
_FS_VAL = """
#version 330
in vec4 v_val;
out vec4 f_out;
void main() { f_out = vec4(normalize(v_val.xyz), v_val.w); }
"""
_FS_ID = """
#version 330
in vec4 v_val;
out vec4 f_out;
void main() { f_out = vec4(float(gl_PrimitiveID + 1), 0.0, 0.0, 1.0); }
"""


def place_in_view(verts: torch.Tensor, size: int, fov_deg: float = 20.0, fill: float = 0.8):
    """Head-space verts (V, 3) -> camera-space (1, V, 3) framed to ``fill`` of the image, camera (1, 4)."""
    from expportrait.head.geometry import head_to_camera
    from expportrait.render import default_camera
    camera = default_camera(size, size, fov_deg)
    extent = float((verts.amax(0) - verts.amin(0))[:2].max())
    dist = extent / fill / (2.0 * np.tan(np.radians(fov_deg) / 2.0))
    cam = head_to_camera(verts[None], torch.zeros(1, 3), torch.tensor([[0.0, 0.0, dist]]))
    return cam, camera


class ModernGLPass:
    """moderngl EGL renderer of screen-space meshes (pixel x, pixel y, camera z)."""

    def __init__(self, faces: np.ndarray, num_verts: int, height: int, width: int):
        import moderngl

        self.ctx = moderngl.create_standalone_context(backend="egl")
        self.h, self.w = height, width
        self.vbo = self.ctx.buffer(reserve=num_verts * 6 * 4)
        self.ibo = self.ctx.buffer(np.ascontiguousarray(faces, dtype=np.int32).tobytes())
        self.progs, self.vaos = {}, {}
        for key, fs in (("val", _FS_VAL), ("id", _FS_ID)):
            prog = self.ctx.program(vertex_shader=_VS, fragment_shader=fs)
            prog["size"].value = (float(width), float(height))
            self.progs[key] = prog
            layout = (self.vbo, "3f 3f", "in_pos", "in_nrm") if key == "val" else (self.vbo, "3f 12x", "in_pos")
            self.vaos[key] = self.ctx.vertex_array(prog, [layout], index_buffer=self.ibo,
                                                   index_element_size=4)
        self.fbo = self.ctx.framebuffer([self.ctx.texture((width, height), 4, dtype="f4")],
                                        self.ctx.depth_renderbuffer((width, height)))

    def draw(self, screen: np.ndarray, normals: np.ndarray, key: str) -> np.ndarray:
        """screen (V, 3), normals (V, 3) float32 -> (H, W, 4) float32 (row 0 = pixel y 0)."""
        self.vbo.write(np.ascontiguousarray(np.concatenate([screen, normals], 1), dtype=np.float32))
        z = screen[:, 2]
        near = max(float(z.min()) * 0.5, 1e-4)
        self.progs[key]["nf"].value = (near, float(z.max()) * 2.0 + near)
        self.fbo.use()
        self.ctx.enable(self.ctx.DEPTH_TEST)
        self.fbo.clear(0.0, 0.0, 0.0, 0.0, depth=1.0)
        self.vaos[key].render()
        data = self.fbo.read(components=4, dtype="f4")
        return np.frombuffer(data, dtype=np.float32).reshape(self.h, self.w, 4)

    def release(self) -> None:
        self.ctx.release()


def bench_renderer(verts_cam: torch.Tensor, faces: torch.Tensor, camera: torch.Tensor, size: int,
                   repeats: int = 7, warmup: int = 2, with_moderngl: bool = True) -> dict:
    """Time the torch renderer (and moderngl, side by side) on one mesh.

    verts_cam (1, V, 3) OpenCV camera space; faces (T, 3); camera (1, 4); square ``size`` image.
    Returns seconds (median of ``repeats`` after ``warmup``): render_s, rasterize_s and, when
    ``with_moderngl``, moderngl_s (normal+depth pass), moderngl_id_s, ratio, id_agreement.
    """
    from expportrait.head.geometry import vertex_normals
    from expportrait.render import render, to_screen
    from expportrait.render.rasterize import rasterize

    res = {"faces": int(faces.shape[0]), "verts": int(verts_cam.shape[1]), "size": size}
    screen = to_screen(verts_cam, camera)
    res["render_s"] = repeat_time(lambda: render(verts_cam, faces, camera, size, size,
                                                 backend="torch"), repeats, warmup)
    res["rasterize_s"] = repeat_time(lambda: rasterize(screen, faces, size, size, backend="torch"),
                                     repeats, warmup)
    out = render(verts_cam, faces, camera, size, size, backend="torch")
    res["coverage"] = float(out.mask.mean())
    if not with_moderngl:
        return res
    gl = ModernGLPass(faces.numpy(), verts_cam.shape[1], size, size)
    try:
        def gl_val():
            nrm = vertex_normals(verts_cam, faces)[0] * torch.tensor([1.0, -1.0, -1.0])
            return gl.draw(to_screen(verts_cam, camera)[0].numpy(), nrm.numpy(), "val")

        def gl_id():
            return gl.draw(to_screen(verts_cam, camera)[0].numpy(), np.zeros_like(screen[0].numpy()), "id")

        res["moderngl_s"] = repeat_time(gl_val, repeats, warmup)
        res["moderngl_id_s"] = repeat_time(gl_id, repeats, warmup)
        gl_face = np.rint(gl_id()[..., 0]).astype(np.int64) - 1             # (H, W)
        gl_nd = gl_val()
    finally:
        gl.release()
    ours = out.frags.face_id[0].numpy()
    res["id_agreement"] = float((ours == gl_face).mean())
    res["mask_agreement"] = float(((ours >= 0) == (gl_face >= 0)).mean())
    both = (ours >= 0) & (gl_face >= 0)
    res["depth_max_abs_diff_m"] = float(np.abs(out.depth[0, 0].numpy() - gl_nd[..., 3])[both].max())
    res["ratio"] = res["render_s"] / res["moderngl_s"]
    res["rasterize_ratio"] = res["rasterize_s"] / res["moderngl_id_s"]
    return res
