"""Generator training loop (tiny preset, 5 frames at 32 px): learning, DDP, kill/resume, export."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from accelerate.state import AcceleratorState
from safetensors.torch import load_file

from expportrait import cli
from expportrait.data.datasets import make_synthetic_manifest
from expportrait.errors import UserError
from expportrait.generator.config import get_preset
from expportrait.generator.ema import EMA
from expportrait.generator.flow import flow_matching_loss
from expportrait.generator.model import GenCond, ReenactGenerator
from expportrait.generator.train import (TrainConfig, _enable_checkpointing, checkpoints, lr_at,
                                         next_run_dir, train_generator, validate)
from expportrait.generator.vae import build_vae, encode_video

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    return make_synthetic_manifest(tmp_path_factory.mktemp("clips"), n_clips=4, frames=7, size=32,
                                   seed=1, appearance=True)


def _train(**kw) -> dict:
    """One in-process run, on one thread (much faster on shared cores; subprocesses match it)."""
    cfg = TrainConfig(**{"preset": "tiny", "num_frames": 5, "save_every": 100, **kw})
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return train_generator(cfg, progress=False)
    finally:
        torch.set_num_threads(threads)
        AcceleratorState._reset_state(reset_partial_state=True)


def _log(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "loss.jsonl").read_text().splitlines()]


def _env() -> dict:
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"), OMP_NUM_THREADS="1")
    env.pop("WORLD_SIZE", None)
    return env


def _cli_args(data: Path, out: Path, *extra: str) -> list[str]:
    return ["train-generator", "--preset", "tiny", "--data", str(data), "--out", str(out),
            "--num-frames", "5", "--no-progress", *extra]


def test_training_reduces_the_loss_on_a_fixed_batch(tmp_path):
    clip = make_synthetic_manifest(tmp_path / "one", n_clips=1, frames=5, size=32, seed=3)
    out = _train(data=str(clip), out=str(tmp_path / "run"), max_steps=25, lr=2e-3, cond_dropout=0.0,
                 ema_decay=0.0, seed=5, cache_latents=True)
    run = Path(out["run_dir"])
    assert [r["step"] for r in _log(run)] == list(range(1, 26))
    config = get_preset("tiny")
    vae = build_vae(config, run / "vae")
    from expportrait.data.datasets import ClipDataset
    item = ClipDataset(clip, 5)[0]
    batch = {k: v[None] for k, v in item.items()}
    latents = encode_video(vae, batch["frames"])
    cond = GenCond(batch["pose_normals"], batch["ref_normal"], encode_video(vae, batch["ref_image"][:, :, None]))

    def fixed_loss(model) -> float:  # mean over 8 fixed (sigma, noise) draws
        with torch.no_grad():
            return sum(float(flow_matching_loss(model, latents, cond, shift=config.flow_shift, cond_dropout=0.0,
                                                generator=torch.Generator().manual_seed(s))["loss"])
                       for s in range(8)) / 8

    torch.manual_seed(5)  # the loop's initialisation
    before = fixed_loss(ReenactGenerator(config))
    after = fixed_loss(ReenactGenerator.from_pretrained(run / "final" / "model"))
    assert after < 0.85 * before, (before, after)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_ranks_hold_identical_weights(data, tmp_path):
    # `accelerate launch --cpu --num_processes 2` starts a single process unless MPI is set up
    # (accelerate issue #2741); --multi_gpu runs torchrun, and the loop falls back to CPU + gloo.
    out = tmp_path / "ddp"
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
           "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
           "--main_process_port", str(_free_port()), "-m", "expportrait",
           *_cli_args(data, out, "--max-steps", "3", "--save-every", "2", "--debug-hashes")]
    env = _env() | {"HF_HOME": str(tmp_path / "hf")}
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    hashes = sorted((out / "debug").glob("weights-rank*.txt"))
    assert [h.name for h in hashes] == ["weights-rank0.txt", "weights-rank1.txt"]
    assert hashes[0].read_text() == hashes[1].read_text()
    assert [r["step"] for r in _log(out)] == [1, 2, 3]  # one log, written by rank 0 only
    state = out / "checkpoint-2" / "state"
    assert (state / "random_states_0.pkl").is_file() and (state / "random_states_1.pkl").is_file()
    assert json.loads((state / "trainer_state.json").read_text())["world_size"] == 2


def test_killed_and_resumed_run_matches_an_uninterrupted_one(data, tmp_path):
    common = dict(data=str(data), max_steps=6, save_every=2, keep_last=2, seed=7)
    full = Path(_train(out=str(tmp_path / "full"), **common)["run_dir"])
    with pytest.raises(UserError, match="already holds a run"):
        _train(out=str(full), **common)

    killed = tmp_path / "killed"
    proc = subprocess.run([sys.executable, "-m", "expportrait", *_cli_args(
        data, killed, "--max-steps", "6", "--save-every", "2", "--seed", "7", "--stop-after", "3",
        "--set", "keep_last=2")], env=_env(), capture_output=True, text=True, timeout=300)
    assert proc.returncode == -9, proc.stderr[-3000:]  # SIGKILL right after checkpoint-3
    assert [p.name for p in checkpoints(killed)] == ["checkpoint-2", "checkpoint-3"]
    assert not (killed / "final").exists()
    with open(killed / "loss.jsonl", "a") as fh:  # as if killed while logging step 4
        fh.write('{"step": 4, "lo')

    _train(out=str(killed), resume="latest", **common)
    a, b = _log(full), _log(killed)
    assert [r["step"] for r in b] == list(range(1, 7))
    assert [r["loss"] for r in b] == [r["loss"] for r in a]
    for part in ("model", "ema"):
        wa = load_file(str(full / "final" / part / "model.safetensors"))
        wb = load_file(str(killed / "final" / part / "model.safetensors"))
        assert wa.keys() == wb.keys()
        assert all(torch.equal(wa[k], wb[k]) for k in wa), part

    # exported folders load as generators; EMA weights differ from the raw ones
    raw = ReenactGenerator.from_pretrained(killed / "final" / "model")
    ema = ReenactGenerator.from_pretrained(killed / "final" / "ema")
    ckpt = ReenactGenerator.from_pretrained(killed / "checkpoint-6" / "model")
    assert all(torch.equal(x, y) for x, y in zip(raw.state_dict().values(), ckpt.state_dict().values()))
    assert any(not torch.equal(x, y) for x, y in zip(raw.parameters(), ema.parameters()))
    assert [p.name for p in checkpoints(killed)] == ["checkpoint-4", "checkpoint-6"]  # keep_last=2


def test_latent_cache_bf16_and_checkpointing(data, tmp_path):
    plain = _log(Path(_train(data=str(data), out=str(tmp_path / "a"), max_steps=2)["run_dir"]))
    cached = _log(Path(_train(data=str(data), out=str(tmp_path / "b"), max_steps=2,
                              cache_latents=True)["run_dir"]))
    assert [r["loss"] for r in cached] == [r["loss"] for r in plain]
    bf16 = _log(Path(_train(data=str(data), out=str(tmp_path / "c"), max_steps=2, mixed_precision="bf16",
                            grad_checkpointing=True, grad_accum=2)["run_dir"]))
    assert len(bf16) == 2 and all(torch.isfinite(torch.tensor(r["loss"])) for r in bf16)
    model = ReenactGenerator(get_preset("tiny"))
    _enable_checkpointing(model)
    assert model.transformer.gradient_checkpointing


@pytest.mark.parametrize("base", ["reference", "warp"])
def test_ref_residual_trains_with_and_without_the_latent_cache(data, tmp_path, base):
    """A ref_residual generator trains from an --init folder; the still-reference latents (or,
    residual_base "warp", the clip's appearance latents) are cached per clip like the others
    (same losses as encoding every step)."""
    from dataclasses import replace
    init = ReenactGenerator(replace(get_preset("tiny"), prediction="ref_residual", residual_base=base))
    init.save_pretrained(tmp_path / "init")
    plain = _log(Path(_train(data=str(data), out=str(tmp_path / "a"), max_steps=2,
                             init=str(tmp_path / "init"))["run_dir"]))
    cached = _log(Path(_train(data=str(data), out=str(tmp_path / "b"), max_steps=2,
                              init=str(tmp_path / "init"), cache_latents=True)["run_dir"]))
    assert [r["loss"] for r in cached] == [r["loss"] for r in plain]
    assert all(torch.isfinite(torch.tensor(r["loss"])) for r in plain)
    out = ReenactGenerator.from_pretrained(tmp_path / "b" / "final" / "model")
    assert out.config.prediction == "ref_residual" and out.config.residual_base == base
    assert out.transformer.proj_out.weight.abs().sum() > 0          # the zero projection learned


def test_ema_update_swap_and_round_trip(tmp_path):
    lin = torch.nn.Linear(3, 2)
    ema = EMA(lin.named_parameters(), decay=0.9, warmup=False)
    start = lin.weight.detach().clone()
    with torch.no_grad():
        lin.weight.add_(1.0)
    ema.update(lin.named_parameters())
    torch.testing.assert_close(ema.shadow["weight"], start + 0.1)
    current = lin.weight.detach().clone()
    with ema.swapped(lin.named_parameters()):
        torch.testing.assert_close(lin.weight, start + 0.1)
    assert torch.equal(lin.weight, current)
    ema.save(tmp_path / "ema.safetensors")
    other = EMA(torch.nn.Linear(3, 2).named_parameters(), decay=0.9)
    other.load(tmp_path / "ema.safetensors")
    assert other.num_updates == 1 and torch.equal(other.shadow["weight"], ema.shadow["weight"])
    with pytest.raises(UserError, match="EMA state"):
        EMA(torch.nn.Linear(3, 4).named_parameters()).load(tmp_path / "ema.safetensors")
    warm = EMA(lin.named_parameters(), decay=0.999)
    assert warm.current_decay() == pytest.approx(0.1)  # (1 + 0) / (10 + 0)


def test_config_validation_and_run_folders(tmp_path):
    good = TrainConfig(data="x")
    assert validate(good) is good
    for bad in (dict(num_frames=4), dict(preset="nope"), dict(data=""), dict(mixed_precision="fp8"),
                dict(stop_after=5, max_steps=5), dict(max_steps=0)):
        with pytest.raises(UserError):
            validate(TrainConfig(**{"data": "x", **bad}))
    assert lr_at(TrainConfig(lr=1.0, warmup_steps=4), 0) == 0.25
    assert lr_at(TrainConfig(lr=1.0, warmup_steps=4), 10) == 1.0
    (tmp_path / "00003-tiny").mkdir()
    assert next_run_dir(tmp_path, "demo").name == "00004-demo"
    assert next_run_dir(tmp_path / "none", "tiny").name == "00000-tiny"


def test_cli_dry_run_config_file_and_errors(data, tmp_path, capsys):
    config = tmp_path / "train.json"
    config.write_text(json.dumps({"preset": "tiny", "data": str(data), "max_steps": 7, "lr": 3e-4,
                                  "num_frames": 5}))
    runs = tmp_path / "runs"
    assert cli.main(["train-generator", "--config", str(config), "--runs-dir", str(runs), "--lr", "5e-4",
                     "--set", "ema_decay=0.5", "--set", "adam_betas=[0.8, 0.9]", "--dry-run"]) == 0
    text = capsys.readouterr().out
    assert "max_steps          = 7" in text and "lr                 = 0.0005" in text
    assert "ema_decay          = 0.5" in text and "4 clips at 32x32" in text
    assert "00000-tiny" in text and not runs.exists()  # dry run writes nothing
    config.write_text("{not json")
    assert cli.main(["train-generator", "--config", str(config), "--dry-run"]) == 2
    assert cli.main(["train-generator", "--data", str(data), "--set", "nope=1", "--dry-run"]) == 2
    assert cli.main(["train-generator", "--data", str(tmp_path / "missing"), "--dry-run"]) == 2
    assert "not found" in capsys.readouterr().err
    for shipped in sorted((ROOT / "configs" / "train").glob("*.json")):
        assert cli.main(["train-generator", "--config", str(shipped), "--data", str(data),
                         "--num-frames", "5", "--dry-run"]) == 0, shipped.name
    assert cli.main(["train-generator", "--data", str(data), "--num-frames", "9", "--dry-run"]) == 2
    assert "fewer than 9 frames" in capsys.readouterr().err


def test_train_vae_cli_writes_a_loadable_vae_measured_at_clip_length(tmp_path, capsys):
    """train-vae on synthetic clips: a diffusers VAE folder with the latent statistics in its
    config and a report whose reconstruction PSNR is measured on clips of the preset's length
    (9 frames for tiny), not only on the short training crops; --init continues from it."""
    import json

    from diffusers import AutoencoderKLWan

    from expportrait.cli import main
    from expportrait.data.datasets import make_synthetic_manifest
    data = make_synthetic_manifest(tmp_path / "ds", n_clips=2, frames=9, size=32)
    args = ["train-vae", "--data", str(data), "--preset", "tiny", "--steps", "3", "--batch-size", "1",
            "--num-frames", "5", "--no-progress"]
    assert main([*args, "--out", str(tmp_path / "vae")]) == 0
    report = json.loads((tmp_path / "vae" / "train_vae.json").read_text())
    vae = AutoencoderKLWan.from_pretrained(str(tmp_path / "vae"))
    assert vae.config.latents_mean == report["latents_mean"] and len(report["latents_std"]) == vae.config.z_dim
    assert report["eval_frames"] == 9 and 0 < report["reconstruction_psnr"] < 100
    assert main([*args, "--out", str(tmp_path / "vae2"), "--init", str(tmp_path / "vae")]) == 0
    assert "reconstruction PSNR" in capsys.readouterr().out


def test_train_vae_decoder_only_keeps_the_encoder_and_its_latent_space(tmp_path, capsys):
    """--decoder-only: the encoder (and quant_conv) come out bitwise equal to --init's, so latents a
    generator was trained on are unchanged, as are latents_mean/std; the decoder learns (its loss
    on the training clips falls); without --init it is one clear error."""
    from diffusers import AutoencoderKLWan

    from expportrait.cli import main
    from expportrait.data.datasets import ClipDataset, make_synthetic_manifest
    from expportrait.generator.vae import decoder_loss
    data = make_synthetic_manifest(tmp_path / "ds", n_clips=2, frames=9, size=32)
    base = ["train-vae", "--data", str(data), "--preset", "tiny", "--batch-size", "2", "--num-frames", "5",
            "--no-progress", "--image-fraction", "0"]
    assert main([*base, "--steps", "2", "--out", str(tmp_path / "vae")]) == 0
    assert main([*base, "--steps", "1", "--out", str(tmp_path / "x"), "--decoder-only"]) == 2
    assert "--decoder-only needs --init" in capsys.readouterr().err
    assert main([*base, "--steps", "40", "--lr", "2e-3", "--out", str(tmp_path / "dec"), "--init",
                 str(tmp_path / "vae"), "--decoder-only", "--latent-noise", "0.1"]) == 0
    a = AutoencoderKLWan.from_pretrained(str(tmp_path / "vae"))
    b = AutoencoderKLWan.from_pretrained(str(tmp_path / "dec"))
    sa, sb = a.state_dict(), b.state_dict()
    frozen = [k for k in sa if k.startswith(("encoder.", "quant_conv."))]
    assert frozen and all(torch.equal(sa[k], sb[k]) for k in frozen)
    assert any(not torch.equal(sa[k], sb[k]) for k in sa if k.startswith("decoder."))
    assert b.config.latents_mean == a.config.latents_mean and b.config.latents_std == a.config.latents_std
    video = torch.stack([ClipDataset(str(data), 5, seed=0)[k]["frames"] for k in range(2)])
    with torch.no_grad():
        before, after = decoder_loss(a, video)["loss"], decoder_loss(b, video)["loss"]
    assert after < 0.9 * before, (float(before), float(after))
