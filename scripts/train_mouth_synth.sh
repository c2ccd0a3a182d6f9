#!/usr/bin/env bash
# warp_first's learned open mouth on a close crop of the mouth: scripts/train_warp_synth.sh's
# recipe (training people of configs/identity_split.json only, warp-residual demo16 transformer,
# shipped VAE) with every crop centred on the mouth and 0.8 face widths wide instead of 2.2 around
# the face, so the mouth spans ~35 of the 64 pixels instead of 8-12.
#
#   bash scripts/train_mouth_synth.sh   (OUT=the checkpoint folder, default runs/mouth-synth-ckpt)
set -euo pipefail
cd "$(dirname "$0")/.."
export DATA=${DATA:-data/clips-mouth-synth} RUN=${RUN:-runs/mouth-synth} OUT=${OUT:-runs/mouth-synth-ckpt}
export CROP_CENTRE=mouth CROP_SCALE=${CROP_SCALE:-0.8}
exec bash scripts/train_warp_synth.sh
