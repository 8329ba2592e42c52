#!/usr/bin/env bash
# The wheel check: a wheel built from the repo (`pip wheel .`) installs into a fresh venv,
# and `vidkompy-vs comp` works from it, on the sample pair, with no ffmpeg/ffprobe on PATH.
# Also checks that the wheel carries every module and every file of package data (the
# presets) the source tree has. Needs PyPI (the venv installs the dependencies).
#
#   scripts/check_wheel.sh            (make wheel-check; PYTHON312=... picks the interpreter)
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
py=${PYTHON312:-python3.12}
work=$(mktemp -d "${TMPDIR:-/tmp}/wheel-check.XXXXXX")
trap 'rm -rf "$work"' EXIT
step() { echo "wheel-check: $*" >&2; }

step "building the wheel"
"$py" -m pip wheel -q --no-deps -w "$work/dist" "$repo"
whl=$(ls "$work"/dist/vidkompy_vs-*.whl)
step "$(basename "$whl")"

# everything under vidkompy_vs/ that git tracks must be in the wheel (the presets are package
# data: a missing one only shows when a user asks for it)
(cd "$repo" && git ls-files vidkompy_vs | grep -v '/__pycache__/' | sort) > "$work/want"
"$py" -c 'import sys, zipfile; print("\n".join(sorted(n for n in zipfile.ZipFile(sys.argv[1]).namelist()
                                                    if n.startswith("vidkompy_vs/"))))' "$whl" > "$work/got"
missing=$(comm -23 "$work/want" "$work/got")
if [ -n "$missing" ]; then
  echo "wheel-check: the wheel lacks:" $missing >&2
  exit 1
fi
step "wheel holds all $(wc -l < "$work/want") files of vidkompy_vs/ (presets included)"

step "installing it into a fresh venv"
"$py" -m venv "$work/venv"
"$work/venv/bin/python" -m pip install -q --upgrade pip
"$work/venv/bin/python" -m pip install -q "$whl"

# outside the repo, so that nothing is imported from the source tree
cd "$work"
vk="$work/venv/bin/vidkompy-vs"
"$work/venv/bin/python" - <<'PY'
import vidkompy_vs, vidkompy_vs.settings as s
assert "site-packages" in vidkompy_vs.__file__, vidkompy_vs.__file__
assert sorted(p.stem for p in s.PRESET_DIR.glob("*.json")) == ["default", "fast", "precise", "robust"]
PY
"$repo/scripts/without-ffmpeg.sh" "$work/venv/bin/python" -c \
  'from vidkompy_vs.sample import make_pair; make_pair("pair")'
step "vidkompy-vs comp (aligning first) on the sample pair"
"$repo/scripts/without-ffmpeg.sh" "$vk" -q comp pair/bg.mp4 pair/fg.mp4 -o comp.mp4 --align-preset fast
"$work/venv/bin/python" - <<'PY'
import av
with av.open("comp.mp4") as c, av.open("pair/fg.mp4") as f:
    v, fv = c.streams.video[0], f.streams.video[0]
    n, fn = sum(1 for _ in c.decode(video=0)), sum(1 for _ in f.decode(video=0))
    assert (v.codec_context.width, v.codec_context.height) == (640, 360), (v.codec_context.width, v.codec_context.height)
    assert n == fn, (n, fn)
    assert c.streams.audio, "no audio"
print(f"wheel-check: comp.mp4 640x360, {n} frames (FG's {fn}), with sound")
PY
step "ok"
