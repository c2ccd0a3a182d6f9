"""Benchmark: pure-PyTorch renderer vs moderngl (EGL, Mesa llvmpipe) on the same mesh, side by side.

    python benchmarks/renderer.py [--mesh synthetic|bfm] [--size 512] [--repeats 7]

Both sides get the same camera-space mesh every repeat (as in tracking, where vertices change per
step) and return maps on the CPU:

- ``torch render``: ``expportrait.render.render(..., outputs=("normal", "depth", "mask"))``,
  i.e. z-buffer + differentiable barycentrics + normal interpolation (the headline number);
- ``torch rasterize``: ``rasterize`` only (face ids + barycentrics + depth);
- ``moderngl normal+depth``: vertex normals (same torch code), VBO upload, one draw call with depth
  test writing (normal, z) to an RGBA32F target, read back to numpy (the headline reference);
- ``moderngl id``: VBO upload + triangle-id pass (gl_PrimitiveID) read back.

Also reports the fraction of pixels on which the two triangle-id maps agree. The last output line
is one JSON object. Other benchmarks import the measuring code:
``sys.path.insert(0, "benchmarks"); from renderer import bench_renderer, synthetic_mesh``.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import time

import numpy as np
import torch

from expportrait.head.geometry import head_to_camera, vertex_normals
from expportrait.render import default_camera, render, to_screen
from expportrait.render.rasterize import rasterize

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


def synthetic_mesh(side: int = 230) -> tuple[torch.Tensor, torch.Tensor]:
    """A face-sized height-field surface in head space (x left, y up, z out of the face):
    side^2 vertices (230 -> 52,900, about the BFM's 53k) and 2 (side - 1)^2 faces (104,882),
    counter-clockwise seen from the front. Returns verts (V, 3) metres, faces (T, 3) int64."""
    u = torch.linspace(-1.0, 1.0, side)
    Y, X = torch.meshgrid(u, u, indexing="ij")                       # (side, side), row 0 = top
    Z = 0.35 * torch.exp(-2.0 * (X ** 2 + Y ** 2)) + 0.05 * torch.cos(6.0 * X) * torch.cos(5.0 * Y)
    verts = torch.stack([0.08 * X, -0.1 * Y, 0.1 * Z], -1).reshape(-1, 3)  # (V, 3)
    i = torch.arange(side - 1)
    I, J = torch.meshgrid(i, i, indexing="ij")
    a = (I * side + J).reshape(-1)
    b, c = a + 1, a + side
    faces = torch.cat([torch.stack([a, c, b], -1), torch.stack([b, c, c + 1], -1)])  # (T, 3)
    return verts, faces


def bfm_mesh() -> tuple[torch.Tensor, torch.Tensor]:
    """The dense BFM head from the head layer (guarded: it may not exist yet)."""
    try:
        from expportrait.head import load_head
    except ImportError as err:
        raise SystemExit(f"--mesh bfm needs expportrait.head.load_head ({err})")
    head = load_head("bfm", density="full")
    with torch.no_grad():
        for name in ("template", "mean", "neutral", "verts"):
            v = getattr(head, name, None)
            if isinstance(v, torch.Tensor):
                break
        else:
            shape = torch.zeros(1, getattr(head, "n_shape", 0))
            expr = torch.zeros(1, getattr(head, "n_exp", 0))
            v = head(shape, expr, None).dense[0]
    verts = v.reshape(-1, 3).float()
    return verts - verts.mean(0), head.faces.long()


def place_in_view(verts: torch.Tensor, size: int, fov_deg: float = 20.0, fill: float = 0.8):
    """Head-space verts (V, 3) -> camera-space (1, V, 3) framed to ``fill`` of the image, camera (1, 4)."""
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


def _median_time(fn, repeats: int, warmup: int = 2) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def bench_renderer(verts_cam: torch.Tensor, faces: torch.Tensor, camera: torch.Tensor, size: int,
                   repeats: int = 7, warmup: int = 2, with_moderngl: bool = True) -> dict:
    """Time the torch renderer (and moderngl, side by side) on one mesh.

    verts_cam (1, V, 3) OpenCV camera space; faces (T, 3); camera (1, 4); square ``size`` image.
    Returns seconds (median of ``repeats`` after ``warmup``): render_s, rasterize_s and, when
    ``with_moderngl``, moderngl_s (normal+depth pass), moderngl_id_s, ratio, id_agreement.
    """
    res = {"faces": int(faces.shape[0]), "verts": int(verts_cam.shape[1]), "size": size}
    screen = to_screen(verts_cam, camera)
    res["render_s"] = _median_time(lambda: render(verts_cam, faces, camera, size, size,
                                                  backend="torch"), repeats, warmup)
    res["rasterize_s"] = _median_time(lambda: rasterize(screen, faces, size, size, backend="torch"),
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

        res["moderngl_s"] = _median_time(gl_val, repeats, warmup)
        res["moderngl_id_s"] = _median_time(gl_id, repeats, warmup)
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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--mesh", choices=["synthetic", "bfm"], default="synthetic")
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--extra", action="store_true", help="also time 10k faces and 256^2 (torch only)")
    ap.add_argument("--threads", type=int, default=0,
                    help="torch CPU threads (0: torch's default); 1 is steadier on a loaded machine")
    args = ap.parse_args()
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    torch.set_grad_enabled(False)
    verts, faces = bfm_mesh() if args.mesh == "bfm" else synthetic_mesh()
    cam_verts, camera = place_in_view(verts, args.size)
    res = bench_renderer(cam_verts, faces, camera, args.size, args.repeats)
    res["mesh"] = args.mesh
    res["threads"] = torch.get_num_threads()
    rows = [("torch render (normal+depth+mask)", res["render_s"]),
            ("torch rasterize (id+bary+depth)", res["rasterize_s"]),
            ("moderngl EGL normal+depth + readback", res["moderngl_s"]),
            ("moderngl EGL triangle id + readback", res["moderngl_id_s"])]
    if args.extra:
        small_v, small_f = synthetic_mesh(72)
        for name, (v, f) in (("106k", (verts, faces)), ("10k", (small_v, small_f))):
            for s in (256, 512):
                cv, cm = place_in_view(v, s)
                r = bench_renderer(cv, f, cm, s, args.repeats, with_moderngl=False)
                rows.append((f"torch render {name} faces {s}^2", r["render_s"]))
                rows.append((f"torch rasterize {name} faces {s}^2", r["rasterize_s"]))
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"mesh={args.mesh} verts={res['verts']} faces={res['faces']} size={args.size} "
          f"coverage={res['coverage']:.2f} threads={torch.get_num_threads()} "
          f"cpus={os.cpu_count()} load1={load:.1f}")
    for name, sec in rows:
        print(f"  {name:<42s} {sec * 1e3:9.2f} ms")
    print(f"  ratio render/moderngl = {res['ratio']:.2f}, rasterize/moderngl-id = "
          f"{res['rasterize_ratio']:.2f}, id agreement = {res['id_agreement'] * 100:.2f} %, "
          f"mask agreement = {res['mask_agreement'] * 100:.2f} %, "
          f"max |depth diff| = {res['depth_max_abs_diff_m']:.2e} m")
    keys = ("renderer_s", "moderngl_s", "ratio", "faces", "size")
    res["renderer_s"] = res["render_s"]
    from _readme import write_section
    write_section("renderer", f"python benchmarks/renderer.py --mesh {args.mesh} --threads {args.threads}",
                  [(n, f"{sec * 1e3:.1f} ms", "") for n, sec in rows]
                  + [("render / moderngl", f"**{res['ratio']:.2f}x**", "<= 3x"),
                     ("triangle-id agreement with moderngl", f"{res['id_agreement'] * 100:.2f} %", "")],
                  note=f"mesh {args.mesh}: {res['verts']} vertices, {res['faces']} faces, {args.size}², "
                       f"{res['threads']} torch threads.")
    print(json.dumps({k: res[k] for k in keys} | {k: v for k, v in res.items() if k not in keys}))


if __name__ == "__main__":
    main()
