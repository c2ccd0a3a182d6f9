"""Benchmark: pure-PyTorch renderer vs moderngl (EGL, Mesa llvmpipe) on the same mesh, side by side.

    python benchmarks/renderer.py [--mesh synthetic|bfm] [--size 512] [--repeats 7] [--extra]
        [--threads N] [--no-readme] [--out DIR] [--json FILE]

Both sides get the same camera-space mesh every repeat (as in tracking, where vertices change per
step) and return maps on the CPU:

- ``torch render``: ``expportrait.render.render(..., outputs=("normal", "depth", "mask"))``,
  i.e. z-buffer + differentiable barycentrics + normal interpolation (the headline number);
- ``torch rasterize``: ``rasterize`` only (face ids + barycentrics + depth);
- ``moderngl normal+depth``: vertex normals (same torch code), VBO upload, one draw call with depth
  test writing (normal, z) to an RGBA32F target, read back to numpy (the headline reference);
- ``moderngl id``: VBO upload + triangle-id pass (gl_PrimitiveID) read back.

Also reports the fraction of pixels on which the two triangle-id maps agree. ``--threads``: torch
CPU threads (default: torch's; 1 is steadier on a loaded machine). Writes benchmarks/README.md
(section "renderer") unless ``--no-readme``; the last output line is one JSON object (the harness
flags: ``benchmarks/common.py``). The measuring code (``bench_renderer``, ``place_in_view``,
``ModernGLPass``) is in ``benchmarks/measures.py``, shared with ``tracking.py``.
"""
from __future__ import annotations

import os

import torch

from common import finish, load_average, parser, setup
from measures import ModernGLPass, bench_renderer, place_in_view  # noqa: F401  (ModernGLPass: re-exported)


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


def main() -> None:
    ap = parser(__doc__, out="out/benchmarks/renderer")
    ap.add_argument("--mesh", choices=["synthetic", "bfm"], default="synthetic")
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--extra", action="store_true", help="also time 10k faces and 256^2 (torch only)")
    args = setup(ap.parse_args())
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
    print(f"mesh={args.mesh} verts={res['verts']} faces={res['faces']} size={args.size} "
          f"coverage={res['coverage']:.2f} threads={torch.get_num_threads()} "
          f"cpus={os.cpu_count()} load1={load_average():.1f}")
    for name, sec in rows:
        print(f"  {name:<42s} {sec * 1e3:9.2f} ms")
    print(f"  ratio render/moderngl = {res['ratio']:.2f}, rasterize/moderngl-id = "
          f"{res['rasterize_ratio']:.2f}, id agreement = {res['id_agreement'] * 100:.2f} %, "
          f"mask agreement = {res['mask_agreement'] * 100:.2f} %, "
          f"max |depth diff| = {res['depth_max_abs_diff_m']:.2e} m")
    keys = ("renderer_s", "moderngl_s", "ratio", "faces", "size")
    res["renderer_s"] = res["render_s"]
    rows = ([(n, f"{sec * 1e3:.1f} ms", "") for n, sec in rows]
            + [("render / moderngl", f"**{res['ratio']:.2f}x**", "<= 3x"),
               ("triangle-id agreement with moderngl", f"{res['id_agreement'] * 100:.2f} %", "")])
    finish(args, {k: res[k] for k in keys} | {k: v for k, v in res.items() if k not in keys},
           section=("renderer", f"python benchmarks/renderer.py --mesh {args.mesh} --threads {args.threads or 0}",
                    rows, f"mesh {args.mesh}: {res['verts']} vertices, {res['faces']} faces, {args.size}², "
                          f"{res['threads']} torch threads."))


if __name__ == "__main__":
    main()
