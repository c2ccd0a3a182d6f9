"""Pipeline checkpoint folders: the shipped default, a completeness check, and assembling one
from trained parts (``export_checkpoint``).

Layout (read by ``pipeline.ReenactPipeline.from_checkpoint``, each part loaded only by the engines
that use it, ``engines.base.Parts``; the shipped demo is ``expportrait/checkpoints/demo``)::

    DIR/generator/{config.json, model.safetensors}   ReenactGenerator (fp16 is fine)
    DIR/vae/{config.json, diffusion_pytorch_model.safetensors}   diffusers AutoencoderKLWan
    DIR/pipeline.json    optional {"pipeline": PipelineConfig, "tracking": TrackConfig} fields
    DIR/transfer/        optional ExpressionTransfer (default: the shipped transfer-bfm)
    DIR/synth/{config.json, model.safetensors}   optional ReenactGenerator for warp_first's
                         learned mouth (``mouth_source`` "learned"; same VAE), on ``synth_crop`` crops
"""
from __future__ import annotations

from pathlib import Path

import torch

from expportrait.errors import UserError

CHECKPOINT_ROOT = Path(__file__).resolve().parent / "checkpoints"


def default_checkpoint() -> Path:
    return CHECKPOINT_ROOT / "demo"


RECIPE = "bash scripts/train_demo.sh (see docs/training.md)"


def check_checkpoint(folder: Path) -> None:
    missing = [p for p in ("generator/config.json", "generator/model.safetensors", "vae/config.json")
               if not (folder / p).is_file()]
    if missing:
        if folder.resolve() == default_checkpoint().resolve():
            raise UserError(f"the demo checkpoint {folder} is missing ({missing[0]}); make it with {RECIPE}")
        raise UserError(f"checkpoint {folder} is incomplete: missing {', '.join(missing)}")


def export_checkpoint(generator_dir: str | Path, vae_dir: str | Path, out: str | Path,
                      pipeline_json: str | Path | None = None, dtype=torch.float16,
                      synth_dir: str | Path | None = None) -> Path:
    """Assemble a checkpoint folder (layout above) from a trained generator export (e.g.
    ``RUN/final/ema``), a VAE folder and optionally warp_first's learned part (``synth_dir``, a
    generator export), cast to ``dtype`` (fp16: tens of MB at most)."""
    import shutil

    from diffusers import AutoencoderKLWan

    from expportrait.generator.model import ReenactGenerator
    out = Path(out)
    tmp = out.with_name(out.name + ".tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    ReenactGenerator.from_pretrained(generator_dir).save_pretrained(tmp / "generator", dtype=dtype)
    if synth_dir:
        ReenactGenerator.from_pretrained(synth_dir).save_pretrained(tmp / "synth", dtype=dtype)
    vae = AutoencoderKLWan.from_pretrained(str(vae_dir), local_files_only=True, torch_dtype=dtype)
    vae.save_pretrained(str(tmp / "vae"))
    if pipeline_json:
        shutil.copy(pipeline_json, tmp / "pipeline.json")
    if (out / "README.md").is_file():                 # the folder's own notes survive a re-export
        shutil.copy(out / "README.md", tmp / "README.md")
    if out.exists():
        shutil.rmtree(out)
    tmp.rename(out)
    return out
