#!/usr/bin/env bash
# Experiment (issue 31, item 7): the paper's generator as the refiner of warp_first's mouth
# composite. Its condition is the composite (the reference warped by its head, another person's
# inner mouth carried into the driven lips where they open wider than the reference's, colour
# matched to this face: what `--mouth-source driver` makes), its target the real frame; trained on
# the TRAINING people of configs/identity_split.json only; selected on the validation people by
# benchmarks/unseen.py (`--synthesize`: mouth_source "learned" = this refiner over the driver's
# composite).
#
#   1. media (training split only; the script refuses any other person): franck (4 windows of 120
#      frames at 0/1200/2400/3600) and carphone frames 0-59. prepare: mouth-centred 64 px crops 0.8
#      face widths wide (the lips span ~35 px), 30-frame clips every 10 frames, flips, 3 scales,
#      stage base (what warp_first tracks), a random reference per clip warped to every frame
#      with a donor's inner mouth carried in (`--warp-reference --mouth-donor`). carphone_man's
#      mouth (176x144 video) is a dark blur with no teeth, so franck's windows take franck's
#      mouths from a window 40-80 s away (not the frame being made: the teeth of another moment,
#      as a driver's are), carphone's take franck's
#   2. (scripts/train_warp_synth.sh's steps 2 and 3) the shipped generator with residual_base
#      "warp" and its output projection zeroed (it starts by returning the composite), fine-tuned
#      $STEPS steps at lr 1e-4 on 9-frame clips with the shipped VAE
#   3. export a checkpoint into $OUT: the shipped generator and VAE, the EMA generator as DIR/synth
#      and configs/demo/pipeline-synth-mouth.json (mouth_source "learned" on mouth crops)
#
# Measured (2026-12-08, 2 CPU cores, STEPS=2000): step 1 about 2 min (264 clips), step 2 476 s
# (latents cached; the machine shared with tests for part of it), step 3 seconds. On the
# validation people (benchmarks/unseen.py --checkpoint OUT --engines warp_first --synthesize) it
# loses to the composite it starts from: teeth ratio 0.36 (composite 0.89), teeth correlation
# 0.38 (0.79), cross mouth 0.89 (0.95), self with the driver's mouth 27.29 dB (27.66), mouth box
# 27.10 dB (28.91); in the frames the teeth turn into a grey-blue blur that also dulls the lips
# (docs/experiments.md, 2026-12-08 second session). Not shipped.
#
#   bash scripts/train_mouth_refiner.sh   (OUT=the checkpoint folder, default runs/mouth-refiner-ckpt)
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${DATA:-data/clips-mouth-refiner}
MEDIA_DIR=${MEDIA_DIR:-data/media-refiner}
RUN=${RUN:-runs/mouth-refiner}
OUT=${OUT:-runs/mouth-refiner-ckpt}

python - "$MEDIA_DIR" <<'PY'
import sys
from pathlib import Path
from expportrait.data.media import load_split, person_of
from expportrait.data.video import read_source, write_video
out = Path(sys.argv[1])
train = set(load_split()["train"])
for name in ("franck", "carphone"):
    if person_of(name) not in train:
        sys.exit(f"{name} ({person_of(name)}) is not a training identity of configs/identity_split.json")
out.mkdir(parents=True, exist_ok=True)
for name, start, n in [("franck", s, 120) for s in (0, 1200, 2400, 3600)] + [("carphone", 0, 60)]:
    path = out / f"{name}_{start:05d}.mp4"
    if not path.is_file():
        v = read_source(f"sample:{name}", max_frames=n, start=start)
        write_video(path, v.frames, v.fps)
        print("wrote", path, len(v.frames), "frames")
PY
COMMON=(--out "$DATA" --size 64 --clip-frames 30 --clip-stride 10 --reference random --flip
        --scales 0.9,1.0,1.1 --track-config configs/demo/track.json --stages base --warp-reference
        --crop-centre mouth --crop-scale 0.8)
for pair in franck_00000:franck_02400 franck_01200:franck_03600 franck_02400:franck_00000 \
            franck_03600:franck_01200 carphone_00000:franck_00000; do
    expportrait prepare "$MEDIA_DIR/${pair%%:*}.mp4" --mouth-donor "$MEDIA_DIR/${pair##*:}.mp4" "${COMMON[@]}"
done
export DATA RUN OUT DATA_READY=1 CROP_CENTRE=mouth     # steps 2 and 3 there (STEPS, SHIPPED too)
exec bash scripts/train_warp_synth.sh
