"""expportrait train-vae --data DATASET --out DIR [--preset demo] [--steps N]

Trains the small Wan VAE of a preset (the demo's; no Wan VAE weights ship offline) on prepared
clips and writes a diffusers folder usable as ``train-generator --vae-dir DIR``.
"""
from __future__ import annotations


def add_arguments(p) -> None:
    p.add_argument("--data", required=True, help="clip dataset folder (expportrait prepare)")
    p.add_argument("--out", required=True, help="output VAE folder (diffusers layout)")
    p.add_argument("--preset", default="demo", help="generator preset giving the VAE (default demo)")
    p.add_argument("--init", default=None, help="start from this VAE folder")
    p.add_argument("--steps", type=int, default=2000)
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--num-frames", type=int, default=5, help="frames per crop, 4k+1 (default 5)")
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--image-fraction", type=float, default=0.5, help="share of single-frame steps")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    p.add_argument("--fp16", action="store_true", help="save float16 weights")
    p.add_argument("--decoder-only", action="store_true",
                   help="train only the decoder of --init (frozen encoder: a generator trained on its latents still fits)")
    p.add_argument("--edge-weight", type=float, default=1.0, help="--decoder-only: weight of the L1 on image differences")
    p.add_argument("--latent-noise", type=float, default=0.0, help="--decoder-only: latent noise, x latent std")
    p.add_argument("--no-progress", action="store_true")


def run(args) -> int:
    from expportrait.generator.vae_train import TrainVAEConfig, train_vae

    cfg = TrainVAEConfig(data=args.data, out=args.out, preset=args.preset, init=args.init,
                         steps=args.steps, batch_size=args.batch_size, num_frames=args.num_frames,
                         lr=args.lr, image_fraction=args.image_fraction, seed=args.seed, threads=args.threads, fp16=args.fp16,
                         decoder_only=args.decoder_only, edge_weight=args.edge_weight,
                         latent_noise=args.latent_noise)
    res = train_vae(cfg, progress=not args.no_progress)
    print(f"trained VAE: {res['steps']} steps, L1 {res['loss_l1']:.4f}, reconstruction PSNR "
          f"{res['psnr']:.2f} dB, {res['seconds']:.0f} s -> {res['out']}")
    return 0
