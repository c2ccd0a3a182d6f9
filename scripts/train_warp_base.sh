#!/usr/bin/env bash
# Experiment (not shipped): a demo generator with residual_base "warp" -- its base is the reference
# warped by the driven head frame by frame instead of the reference held still.
#
#   1. prepare both videos as recipe step 11 (scripts/train_demo.sh) plus --warp-reference: every
#      clip also carries its reference warped to each frame (98 s here with step 11's fits cached)
#   2. the generator in $SHIPPED with residual_base "warp" and its output projection zeroed (it
#      starts by returning the warp through the VAE), fine-tuned 2500 steps at lr 1e-4 on 9-frame
#      clips, EMA exported with $SHIPPED's VAE into $OUT
#   3. run it: expportrait reenact --checkpoint $OUT ... or python benchmarks/reenact.py --checkpoint $OUT
#
# Measured (docs/experiments.md, "Embedded-default demo", 2 CPU cores):
#   * SHIPPED = the shipped demo16 checkpoint (default): step 2 took 2214 s. Seeds 0-2: self
#     16.37 dB, AED 1.09 (the shipped checkpoint: 15.66 dB, 1.42), cross AED 1.54 (1.65), but dlib
#     finds the astronaut in only 62 % of the cross frames (97 %): not shipped. STEPS=5000: 58 %.
#   * SHIPPED=runs/demo8-ckpt RUN=runs/demo-warp OUT=runs/demo-warp-ckpt (the 8x8-latent demo,
#     step 13 of scripts/train_demo.sh): step 2 took 1046 s; self face crop 14.97 dB, AED 1.73,
#     cross identity 40 %.
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${DATA:-data/clips-demo-warp}
RUN=${RUN:-runs/demo16-warp}
STEPS=${STEPS:-2500}
OUT=${OUT:-runs/demo16-warp-ckpt}
SHIPPED=${SHIPPED:-src/expportrait/checkpoints/demo}   # or runs/demo8-ckpt (the 8x8 demo)

expportrait prepare sample:carphone sample:astronaut --out "$DATA" --frames 0:60 --size 64 \
    --clip-frames 30 --clip-stride 10 --reference random --flip --scales 0.9,1.0,1.1 \
    --track-config configs/demo/track.json --stages base,personalized --rotations=-20,-10,0,10,20 \
    --still-expressions --warp-reference
if [ ! -f "$RUN-init/config.json" ]; then
    python - "$SHIPPED/generator" "$RUN-init" <<'PY'
import sys
from expportrait.generator.model import ReenactGenerator
ReenactGenerator.residual_start(sys.argv[1], residual_base="warp").save_pretrained(sys.argv[2])
PY
fi
expportrait train-generator --config configs/train/demo-res.json --data "$DATA" --out "$RUN" \
    --init "$RUN-init" --vae-dir "$SHIPPED/vae" --num-frames 9 --max-steps "$STEPS" --lr 1e-4 \
    --resume latest
python - "$RUN/final/ema" "$SHIPPED/vae" "$OUT" <<'PY'
import sys
from expportrait.export import export_checkpoint
print("exported", export_checkpoint(sys.argv[1], sys.argv[2], sys.argv[3], "configs/demo/pipeline.json"))
PY
