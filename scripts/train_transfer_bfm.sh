#!/usr/bin/env bash
# Recipe of the shipped checkpoint src/expportrait/checkpoints/transfer-bfm (fp16, ~0.1 MB):
# E and G trained by self-reconstruction on 32 synthetic BFM identities (transfer/synthetic.py,
# seed 1000) at the coarse density; G is density-agnostic (rest-position features), so it runs
# on the tracker's medium mesh. Deterministic on CPU; about 2-3 minutes on one core.
# Extra real fits (all tracked with --head bfm at one density) may be appended as arguments.
set -euo pipefail
cd "$(dirname "$0")/.."
expportrait train-transfer "$@" --synthetic 32 --density coarse --config configs/transfer/bfm.json \
    --device cpu --threads 1 --out src/expportrait/checkpoints/transfer-bfm
