#!/usr/bin/env bash
# Run a command with no ffmpeg or ffprobe on PATH (the package must not need a system one).
# Each PATH folder that holds one is swapped for a temporary folder of links to everything
# else in it, so the rest of the system (make, git, python, ...) keeps working.
#
#   scripts/without-ffmpeg.sh make test
#   VIDKOMPY_HIDE=ffmpeg scripts/without-ffmpeg.sh ...   # hide only these names
set -euo pipefail
hide=${VIDKOMPY_HIDE:-ffmpeg ffprobe}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/without-ffmpeg.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

hidden() {
  local n
  for n in $hide; do [ "$1" = "$n" ] && return 0; done
  return 1
}

newpath=
i=0
IFS=: read -ra dirs <<< "$PATH"
for d in "${dirs[@]}"; do
  [ -n "$d" ] || continue
  holds=
  for n in $hide; do [ -e "$d/$n" ] && holds=1; done
  if [ -n "$holds" ]; then
    i=$((i + 1))
    sub="$tmp/$i"
    mkdir "$sub"
    for f in "$d"/* "$d"/.[!.]*; do
      [ -e "$f" ] || [ -L "$f" ] || continue
      hidden "${f##*/}" || ln -s "$f" "$sub/${f##*/}"
    done
    d=$sub
  fi
  newpath=${newpath:+$newpath:}$d
done
export PATH=$newpath
for n in $hide; do
  if command -v "$n" >/dev/null 2>&1; then
    echo "without-ffmpeg: $n is still on PATH ($(command -v "$n"))" >&2
    exit 1
  fi
done
echo "without-ffmpeg: PATH has no $hide" >&2
"$@"
