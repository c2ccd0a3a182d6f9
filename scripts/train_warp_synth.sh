#!/usr/bin/env bash
# Experiment (measured, not shipped): a learned part for warp_first, the demo16 transformer
# re-trained as a residual over the warped reference (residual_base "warp") on the TRAINING people
# of configs/identity_split.json only, meant to fill what the warp cannot show (the open mouth,
# `reenact --mouth-source learned`) on people it never saw. Measured on the validation people
# (docs/experiments.md, third session of 2026-12-02): it loses against the warp's own mouth
# (self face-box PSNR 26.96 dB against 27.81), so the shipped checkpoint stays as it was.
#
#   1. media (training split only; the script refuses any other person): franck (registry media,
#      4 windows of 120 frames at 0/1200/2400/3600), carphone frames 0-59 (60-119 stay unseen for
#      the self demo), and 13 portraits (franck_still, connery, connery_beard, cage, cage2, bieber,
#      bieber2, murray, chuck, clooney, kim, rihanna, terminator), each edge-padded to a square
#      >= 2.2x its face box at 512x512 as benchmarks/unseen.py frames its portraits, and made into
#      60 frames of smooth random expressions (the photo's base head moved through psi and jaw
#      and the photo warped by it, frame 0 = the photo).
#      prepare: 64 px crops, 30-frame clips every 10 frames, flips, 3 scales, stage base only
#      (what warp_first tracks at inference), a random reference per clip and that reference
#      warped to every frame (--warp-reference). The pairs: video frame i -> frame j of the same
#      person (franck, carphone); for a portrait, one warped expression -> another warped
#      expression or the photo itself (warp and back: the target keeps what the first warp lost,
#      e.g. teeth a closed mouth hid)
#   2. the shipped generator with residual_base "warp" and its output projection zeroed (it starts
#      by returning the warp), fine-tuned $STEPS steps at lr 1e-4 on 9-frame clips with the
#      shipped VAE (trained on carphone_man and astronaut, both training people)
#   3. export a checkpoint into $OUT: the shipped generator and VAE, the EMA generator as its
#      learned part (DIR/synth, fp16) and $PIPELINE_JSON (mouth_source "learned"; the mouth recipe's
#      also sets synth_crop, the crops that generator was trained on)
#
# Measured (2026-12-02, 2 CPU cores, STEPS=2000): step 1 about 20 min (the videos 12 min
# while another job shared the machine, the 13 portraits 8 min; 576 clips), step 2 1165 s (latents
# cached, 1.7 steps/s), step 3 seconds. STEPS=4000 (another 1100 s) scored the same (26.96 dB).
#
#   bash scripts/train_warp_synth.sh   (OUT=the checkpoint folder, default runs/warp-synth-ckpt;
#   DATA_READY=1: step 1 skipped, $DATA already prepared)
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${DATA:-data/clips-warp-synth}
MEDIA_DIR=${MEDIA_DIR:-data/media-train}
RUN=${RUN:-runs/warp-synth}
STEPS=${STEPS:-2000}
CROP_CENTRE=${CROP_CENTRE:-face}     # mouth: scripts/train_mouth_synth.sh
CROP_SCALE=${CROP_SCALE:-2.2}
SHIPPED=${SHIPPED:-src/expportrait/checkpoints/demo}
OUT=${OUT:-runs/warp-synth-ckpt}
PIPELINE_JSON=${PIPELINE_JSON:-configs/demo/pipeline-synth-$CROP_CENTRE.json}
PORTRAITS=(franck_still connery connery_beard cage cage2 bieber bieber2 murray chuck clooney kim
           rihanna terminator)

if [ -z "${DATA_READY:-}" ]; then    # scripts/train_mouth_refiner.sh makes its own clips
python - "$MEDIA_DIR" "${PORTRAITS[@]}" <<'PY'
import sys
from pathlib import Path
sys.path.insert(0, "benchmarks")
from PIL import Image
from unseen import portrait512          # the benchmark's own framing of a portrait
from expportrait.data.media import load_split, person_of
from expportrait.data.video import read_source, write_video
from expportrait.detection.dlib_face import DlibFace
out, portraits = Path(sys.argv[1]), sys.argv[2:]
train = set(load_split()["train"])
for name in ("franck", "carphone", *portraits):
    if person_of(name) not in train:
        sys.exit(f"{name} ({person_of(name)}) is not a training identity of configs/identity_split.json")
out.mkdir(parents=True, exist_ok=True)
windows = [("franck", s, 120) for s in (0, 1200, 2400, 3600)] + [("carphone", 0, 60)]
for name, start, n in windows:
    path = out / f"{name}_{start:05d}.mp4"
    if not path.is_file():
        v = read_source(f"sample:{name}", max_frames=n, start=start)
        write_video(path, v.frames, v.fps)
        print("wrote", path, len(v.frames), "frames")
face = DlibFace()
for name in portraits:   # close crops get room (MediaPipe finds no face in most as they are)
    path = out / f"{name}.png"
    if not path.is_file():
        Image.fromarray(portrait512(read_source(f"sample:{name}").frames[0], face)).save(path)
        print("wrote", path)
PY
SOURCES=("$MEDIA_DIR"/*.mp4 "$MEDIA_DIR"/*.png)
expportrait prepare "${SOURCES[@]}" --out "$DATA" --size 64 --clip-frames 30 --clip-stride 10 \
    --reference random --flip --scales 0.9,1.0,1.1 --track-config configs/demo/track.json \
    --stages base --still-expressions --warp-reference --crop-centre "$CROP_CENTRE" --crop-scale "$CROP_SCALE"
fi
if [ ! -f "$RUN-init/config.json" ]; then
    python - "$SHIPPED/generator" "$RUN-init" <<'PY'
import sys
from expportrait.generator.model import ReenactGenerator
ReenactGenerator.residual_start(sys.argv[1], residual_base="warp").save_pretrained(sys.argv[2])
PY
fi
expportrait train-generator --config configs/train/demo-res.json --preset demo16 --data "$DATA" \
    --out "$RUN" --init "$RUN-init" --vae-dir "$SHIPPED/vae" --num-frames 9 --max-steps "$STEPS" \
    --lr 1e-4 --resume latest
python - "$SHIPPED" "$OUT" "$PIPELINE_JSON" "$RUN/final/ema" <<'PY'
import sys
from expportrait.export import export_checkpoint
shipped, out, pipeline_json, synth = sys.argv[1:]
print("exported", export_checkpoint(f"{shipped}/generator", f"{shipped}/vae", out, pipeline_json,
                                    synth_dir=synth))
PY
