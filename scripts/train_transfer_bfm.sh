#!/usr/bin/env bash
# Recipe of the shipped checkpoint src/expportrait/checkpoints/transfer-bfm (fp16, ~0.1 MB):
# E and G trained by self-reconstruction on the real talking people of the training split
# (configs/identity_split.json: carphone_man, sample:carphone frames 0-119; franck, registry
# media "franck", 4 windows of 64 frames at 0, 1200, 2400, 3600) plus 32 synthetic BFM
# identities (transfer/synthetic.py, seed 1000), all at the tracker's medium density. The
# validation person (cap_man: cap12, cap13) is never tracked here. The fits are tracked with the
# pipeline's tracker (configs/demo/track.json) into runs/transfer-real/CLIP/ (reused when there;
# benchmarks/transfer_real.py reads the same folder). Tracking ~9 min, training 11 min (666 s) on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."
FITS=runs/transfer-real
clips=("carphone sample:carphone 0 120" "franck0 sample:franck 0 64" "franck1200 sample:franck 1200 64"
       "franck2400 sample:franck 2400 64" "franck3600 sample:franck 3600 64")
args=()
for c in "${clips[@]}"; do
    read -r name src start n <<<"$c"
    if [ ! -f "$FITS/$name/fit.safetensors" ]; then
        expportrait track "$src" --start-frame "$start" --max-frames "$n" --config configs/demo/track.json \
            --no-overlay --out "$FITS/$name"
    fi
    args+=("$FITS/$name/fit.safetensors")
done
expportrait train-transfer "${args[@]}" --synthetic 32 --config configs/transfer/bfm.json \
    --device cpu --threads 2 --out src/expportrait/checkpoints/transfer-bfm
