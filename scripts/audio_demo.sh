#!/usr/bin/env bash
# A reenactment whose driving video has sound: the driver's audio must come out in the result.
# carphone (the bundled talking head) has no audio track, so this gives it one: speech from
# espeak-ng when it is installed (apt-get install espeak-ng), else the WAV given as $1, else a
# synthetic tone pattern. Writes out/audio-demo/{driver.mp4, astronaut.mp4, astronaut.compare.mp4}.
#   bash scripts/audio_demo.sh [SPEECH.wav]
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-out/audio-demo}
mkdir -p "$OUT"
WAV="${1:-}"
if [ -z "$WAV" ] && command -v espeak-ng >/dev/null; then
    WAV="$OUT/speech.wav"
    espeak-ng -s 150 -w "$WAV" "Hello. This is the astronaut, driven by the carphone clip. The sound comes from the driving video."
fi
.venv/bin/python - "$OUT/driver.mp4" "$WAV" <<'PY'
import sys
import numpy as np
from expportrait.data.video import read_source, write_video
out, wav = sys.argv[1], sys.argv[2]
clip = read_source("sample:carphone")
if not wav:  # no speech engine: one short beep per second over a low hum
    import av
    wav, rate = out.replace(".mp4", ".wav"), 16000
    t = np.arange(int(rate * len(clip.frames) / clip.fps)) / rate
    x = 0.05 * np.sin(2 * np.pi * 150 * t) + 0.4 * np.sin(2 * np.pi * 880 * t) * ((t % 1.0) < 0.1)
    with av.open(wav, "w") as f:
        s = f.add_stream("pcm_s16le", rate=rate, layout="mono")
        fr = av.AudioFrame.from_ndarray((x * 32767).astype(np.int16)[None], format="s16", layout="mono")
        fr.sample_rate = rate
        for p in [*s.encode(fr), *s.encode()]:
            f.mux(p)
write_video(out, clip.frames, clip.fps, audio_from=wav)
print(f"driving clip with audio: {out}")
PY
.venv/bin/expportrait reenact --source sample:astronaut --driving "$OUT/driver.mp4" --out "$OUT/astronaut.mp4" "${@:2}"
