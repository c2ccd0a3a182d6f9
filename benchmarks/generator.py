"""Generator benchmark: adapter overhead, long-video memory, adapter size on the real 1.3B config.

    python benchmarks/generator.py            # everything (~2-4 min on 2 CPU cores, ~7 GB RAM)
    python benchmarks/generator.py --no-big   # skip the real-size Wan2.1-T2V-1.3B instantiation
        [--threads N] [--no-readme] [--out DIR] [--json FILE]   # the harness flags (common.py)

Measured side by side in one run (the timed forwards on one thread whatever ``--threads`` says);
writes benchmarks/README.md (section "generator") unless ``--no-readme``; the last line is one JSON
object:

- ``overhead_ratio``: single-thread CPU time of a ReenactGenerator forward (condition encoders included) / plain
  ``WanTransformer3DModel`` forward with the same weights and latent size (``demo`` preset, one clip;
  fastest of interleaved repeats). ``overhead_ratio_cached``: the same with the condition features
  precomputed, which is what each sampling step pays (features do not depend on the timestep).
  ``overhead_ratio_appearance``: the same as ``overhead_ratio`` with the appearance extension on.
- ``rss_ratio_256_vs_16``: peak RSS of a fresh process generating 256 frames / 16 frames (``tiny``
  preset, clips of the trained length chained on a shared frame, streamed VAE decode).
  ``rss_delta_ratio_256_vs_16``: the same for the growth of the peak over the current RSS after
  model construction (0 when the import-time peak is never exceeded).
- ``added_params_pct``: adapter parameters (encoders, extra patch-embedding inputs, null context)
  over the base transformer, real Wan2.1-T2V-1.3B config; the model is instantiated with random
  weights on CPU and runs plain and conditioned forwards on a small latent (``big_forward_s``,
  ``big_overhead_ratio``; the outputs are checked to be identical, adapters being zero-init).
"""
from __future__ import annotations

import argparse
import copy
import json
import resource
import subprocess
import sys
import time

import torch

from common import finish, parser, setup
from expportrait.generator.config import PRESETS, get_preset
from expportrait.generator.model import GenCond, ReenactGenerator


def _cond(cfg, frames: int, res: int, batch: int = 1) -> GenCond:
    g = torch.Generator().manual_seed(0)
    lat = res // cfg.vae_spatial
    app = torch.rand(batch, 3, frames, res, res, generator=g) * 2 - 1 if cfg.use_appearance else None
    return GenCond(pose_normals=torch.rand(batch, 3, frames, res, res, generator=g) * 2 - 1,
                   ref_normal=torch.rand(batch, 3, res, res, generator=g) * 2 - 1,
                   ref_latents=torch.randn(batch, cfg.z_dim, 1, lat, lat, generator=g),
                   appearance=app)


def count_params(name: str) -> dict:
    """Parameter counts of a preset, built on the meta device (no memory, no init time)."""
    from diffusers import AutoencoderKLWan, WanTransformer3DModel

    cfg = get_preset(name)
    with torch.device("meta"):
        base = sum(p.numel() for p in WanTransformer3DModel(**cfg.transformer_kwargs()).parameters())
        total = sum(p.numel() for p in ReenactGenerator(cfg).parameters())
        vae = sum(p.numel() for p in AutoencoderKLWan(**cfg.vae_kwargs()).parameters())
    return {"base": base, "adapters": total - base, "total": total, "vae": vae,
            "added_pct": 100.0 * (total - base) / base}


@torch.no_grad()
def overhead(name: str = "demo", repeats: int = 7, appearance: bool | None = None) -> dict:
    """Conditioned vs plain forward, same weights, one clip of the preset."""
    from diffusers import WanTransformer3DModel

    from expportrait.generator.config import replace

    cfg = get_preset(name)
    if appearance is not None:
        cfg = replace(cfg, use_appearance=appearance)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)                 # CPU time of one thread: robust to other load
    torch.manual_seed(0)
    base = WanTransformer3DModel(**cfg.transformer_kwargs()).eval()
    model = ReenactGenerator(cfg, transformer=copy.deepcopy(base)).eval()
    lat = cfg.resolution // cfg.vae_spatial
    x = torch.randn(1, cfg.z_dim, cfg.latent_frames, lat, lat)
    t = torch.tensor([500.0])
    cond = _cond(cfg, cfg.num_frames, cfg.resolution)
    ctx = model.null_text.expand(1, -1, -1)
    feats = model.encode_conditions(cond, x.shape[2])
    runs = {"plain": lambda: base(x, t, ctx, return_dict=False),
            "cond": lambda: model(x, t, cond),
            "cached": lambda: model.forward_features(x, t, feats)}
    times = {k: [] for k in runs}
    for fn in runs.values():
        fn()                                                         # warm-up
    for _ in range(repeats):
        for k, fn in runs.items():
            t0 = time.thread_time()
            fn()
            times[k].append(time.thread_time() - t0)
    torch.set_num_threads(threads)
    med = {k: min(v) for k, v in times.items()}        # min: least disturbed by other load
    return {"plain_s": med["plain"], "cond_s": med["cond"], "cached_s": med["cached"],
            "overhead_ratio": med["cond"] / med["plain"],
            "overhead_ratio_cached": med["cached"] / med["plain"], "tokens": x[0, 0].numel()}


def rss_child(frames: int) -> None:
    """Generate ``frames`` frames with the tiny preset; print peak / baseline RSS in KiB."""
    from expportrait.generator.longvideo import generate
    from expportrait.generator.vae import build_vae

    torch.set_num_threads(1)
    cfg = get_preset("tiny")
    torch.manual_seed(0)
    model, vae = ReenactGenerator(cfg).eval(), build_vae(cfg)
    cond = _cond(cfg, frames, cfg.resolution)
    base = _current_rss_kb()
    t0 = time.perf_counter()
    video = generate(model, vae, cond, num_frames=frames, steps=2, seed=0)
    sec = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    assert video.shape[2] == frames
    print(json.dumps({"frames": frames, "peak_kb": peak, "base_kb": base, "seconds": sec}))


def _current_rss_kb() -> int:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))


def rss() -> dict:
    out = {}
    for frames in (16, 256):
        res = subprocess.run([sys.executable, __file__, "--rss-child", str(frames)],
                             capture_output=True, text=True, check=True)
        out[frames] = json.loads(res.stdout.strip().splitlines()[-1])
    a, b = out[16], out[256]
    return {"rss_ratio_256_vs_16": b["peak_kb"] / a["peak_kb"],
            "rss_delta_ratio_256_vs_16": max(b["peak_kb"] - b["base_kb"], 1024)
            / max(a["peak_kb"] - a["base_kb"], 1024),
            "rss_delta_mb_16": (a["peak_kb"] - a["base_kb"]) / 1024,
            "rss_delta_mb_256": (b["peak_kb"] - b["base_kb"]) / 1024,
            "rss_peak_mb_16": a["peak_kb"] / 1024, "rss_peak_mb_256": b["peak_kb"] / 1024,
            "time_ratio_256_vs_16": b["seconds"] / a["seconds"]}


@torch.no_grad()
def big_child() -> None:
    """Real Wan2.1-T2V-1.3B config, random weights on CPU: plain vs conditioned forward, same
    weights (the base is wrapped in place), on a small latent (64 px, 5 frames, 32 tokens)."""
    from diffusers import WanTransformer3DModel

    cfg = get_preset("wan2.1-1.3b")
    counts = count_params("wan2.1-1.3b")
    torch.set_num_threads(1)                 # CPU time of one thread: robust to other load
    t0 = time.perf_counter()
    torch.manual_seed(0)
    base = WanTransformer3DModel(**cfg.transformer_kwargs()).eval()
    build_s = time.perf_counter() - t0
    x = torch.randn(1, 16, 2, 8, 8)                                 # 2 x 4 x 4 = 32 tokens
    t = torch.tensor([500.0])
    ctx = torch.zeros(1, cfg.text_len, cfg.text_dim)
    plain = []
    for _ in range(2):
        t0 = time.thread_time()
        ref = base(x, t, ctx, return_dict=False)[0]
        plain.append(time.thread_time() - t0)
    model = ReenactGenerator(cfg, transformer=base).eval()          # widens base in place
    cond = _cond(cfg, 5, 64)
    conditioned = []
    for _ in range(2):
        t0 = time.thread_time()
        v = model(x, t, cond)
        conditioned.append(time.thread_time() - t0)
    assert v.shape == x.shape and torch.equal(v, ref)               # zero-init adapters
    print(json.dumps({"added_params_pct": counts["added_pct"], "base_params": counts["base"],
                      "adapter_params": counts["adapters"], "big_build_s": build_s,
                      "big_forward_s": min(conditioned),
                      "big_overhead_ratio": min(conditioned) / min(plain)}))


def main() -> None:
    ap = parser(__doc__, out="out/benchmarks/generator")
    ap.add_argument("--no-big", action="store_true", help="skip the 1.3B instantiation")
    ap.add_argument("--rss-child", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--big-child", action="store_true", help=argparse.SUPPRESS)
    args = setup(ap.parse_args())
    if args.rss_child:
        return rss_child(args.rss_child)
    if args.big_child:
        return big_child()
    result = {}
    for name in PRESETS:
        c = count_params(name)
        print(f"{name:12s} transformer {c['base'] / 1e6:9.2f}M  adapters {c['adapters'] / 1e6:7.3f}M "
              f"({c['added_pct']:.2f}%)  vae {c['vae'] / 1e6:6.2f}M", flush=True)
        result[f"params_{name}"] = c["total"]
    o = overhead()
    print(f"demo forward: plain {o['plain_s'] * 1e3:.1f} ms, conditioned {o['cond_s'] * 1e3:.1f} ms, "
          f"cached features {o['cached_s'] * 1e3:.1f} ms ({o['tokens']} tokens)", flush=True)
    result.update({k: o[k] for k in ("overhead_ratio", "overhead_ratio_cached")})
    result["overhead_ratio_appearance"] = overhead(appearance=True)["overhead_ratio"]
    r = rss()
    print(f"tiny generate peak RSS: 16 frames {r['rss_peak_mb_16']:.0f} MB, 256 frames "
          f"{r['rss_peak_mb_256']:.0f} MB (above the post-build RSS: {r['rss_delta_mb_16']:.1f} / "
          f"{r['rss_delta_mb_256']:.1f} MB); time ratio {r['time_ratio_256_vs_16']:.1f}", flush=True)
    result.update({k: r[k] for k in ("rss_ratio_256_vs_16", "rss_delta_ratio_256_vs_16",
                                     "time_ratio_256_vs_16")})
    if not args.no_big:
        res = subprocess.run([sys.executable, __file__, "--big-child"], capture_output=True,
                             text=True, check=True)
        big = json.loads(res.stdout.strip().splitlines()[-1])
        print(f"wan2.1-1.3b: base {big['base_params'] / 1e9:.3f}B, adapters "
              f"{big['adapter_params'] / 1e6:.2f}M, build {big['big_build_s']:.0f} s, "
              f"conditioned forward {big['big_forward_s']:.1f} s "
              f"(x{big['big_overhead_ratio']:.3f} of plain, output identical)", flush=True)
        result.update({k: big[k] for k in ("added_params_pct", "big_overhead_ratio",
                                           "big_forward_s")})
    rows = [("overhead_ratio (conditioned / plain Wan forward, demo size)", f"{result['overhead_ratio']:.3f}", "<= 1.15"),
            ("overhead_ratio with condition features cached (sampling)", f"{result['overhead_ratio_cached']:.3f}", ""),
            ("overhead_ratio with the appearance condition", f"{result['overhead_ratio_appearance']:.3f}", ""),
            ("rss_ratio_256_vs_16 (peak RSS, tiny preset)", f"{result['rss_ratio_256_vs_16']:.3f}", "<= 1.3"),
            ("time_ratio_256_vs_16", f"{result['time_ratio_256_vs_16']:.2f}", "~16 (linear)")]
    if "added_params_pct" in result:
        rows.append(("added_params_pct (adapters on Wan2.1-T2V-1.3B config)", f"{result['added_params_pct']:.3f} %", "<= 5"))
    cmd = "python benchmarks/generator.py" + (" --no-big" if args.no_big else "")
    finish(args, {k: round(v, 4) if isinstance(v, float) else v for k, v in result.items()},
           section=("generator", cmd, rows))


if __name__ == "__main__":
    main()
