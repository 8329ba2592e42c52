"""batch: many pairs, one summary, resumable; side by side in processes and on a Dask cluster."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import ffmpeg

from vidkompy_vs.batch import _rebase, read_pairs
from vidkompy_vs.cli import comp_args
from vidkompy_vs.errors import VidkompyError
from vidkompy_vs.sources import probe


def run(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "vidkompy_vs", *map(str, args)], capture_output=True, text=True,
                          env={**os.environ, **(env or {})})


def rel(p: Path, base: Path) -> str:
    return os.path.relpath(p, base)


def write_csv(path: Path, rows: list[str]) -> Path:
    path.write_text("\n".join(rows) + "\n")
    return path


@pytest.fixture(scope="module")
def silent_fg(pair, clip_dir) -> Path:
    """FG without its sound (a third, different pair: BG's sound is retimed under it)."""
    out = clip_dir / "fg-silent.mp4"
    if not out.exists():
        ffmpeg("-i", str(pair.fg), "-an", "-c", "copy", str(out))
    return out


def test_three_pairs_summary_and_resume(pair, pair_lossless, silent_fg, tmp_path):
    lst = write_csv(tmp_path / "pairs.csv", [
        "bg,fg,out,options",
        f"{rel(pair.bg, tmp_path)},{rel(pair.fg, tmp_path)},a.mp4,--preset ultrafast",
        f"{pair_lossless.bg},{pair_lossless.fg},b.mkv,--preset ultrafast --audio none",
        f"{rel(pair.bg, tmp_path)},{rel(silent_fg, tmp_path)},,\"--preset ultrafast --crf 30\"",
        f"{rel(pair.bg, tmp_path)},missing.mp4,d.mp4,",
    ])
    out = tmp_path / "out"
    t0 = time.perf_counter()
    r = run("-q", "batch", lst, "-o", out)
    first = time.perf_counter() - t0
    assert r.returncode == 2, r.stderr  # one pair failed; the others went on
    assert r.stderr.strip().splitlines()[-1].endswith(f"1 of 4 pairs failed (see {out / 'summary.csv'})")
    doc = json.loads((out / "summary.json").read_text())
    by = {p["pair"]: p for p in doc["pairs"]}
    assert [p["pair"] for p in doc["pairs"]] == ["a", "b", "fg-silent", "d"]
    assert (doc["done"], doc["error"]) == (3, 1)
    assert by["d"]["status"] == "error" and "missing.mp4: no such file" in by["d"]["message"]
    for name, ext in (("a", ".mp4"), ("b", ".mkv"), ("fg-silent", ".mp4")):
        p = by[name]
        assert p["status"] == "done" and p["output"] == str(out / f"{name}{ext}")
        assert probe(p["output"]).frames == 175
        assert abs(p["offset_s"] - 1.0) < 0.02 and abs(p["x"] - 171) < 0.5 and abs(p["y"] - 63) < 0.5
        assert p["align_s"] > 0 and p["render_s"] > 0 and 0 <= p["temporal_confidence"] <= 1
        assert Path(p["align_file"]).is_file()
    assert (out / "summary.csv").read_text().splitlines()[0].startswith("pair,status,message,bg,fg,output")
    assert not list(out.glob(".*part*"))
    mtimes = {f: f.stat().st_mtime_ns for f in out.glob("*.m*")}

    # a re-run skips the finished pairs: seconds, nothing rewritten
    t0 = time.perf_counter()
    r = run("-q", "batch", lst, "-o", out)
    second = time.perf_counter() - t0
    assert r.returncode == 2
    doc = json.loads((out / "summary.json").read_text())
    assert [p["status"] for p in doc["pairs"]] == ["skipped", "skipped", "skipped", "error"]
    assert doc["pairs"][0]["render_s"] > 0  # the times of the run that made it
    assert {f: f.stat().st_mtime_ns for f in out.glob("*.m*")} == mtimes
    assert second < 5, (first, second)
    print(f"batch of 3 pairs + 1 failing: {first:.1f} s; re-run {second:.1f} s")


def test_processes_and_dask_give_identical_alignments(pair, pair_lossless, tmp_path):
    """The same pairs in local processes and on a LocalCluster.

    Aligned afresh on each side (own caches), the maps and placements are equal; the
    spatial confidence may differ in its 16th digit, because the aligner itself is not
    bit-reproducible from run to run (whether a refinement sample comes from FG's
    fingerprint pass or is read afterwards depends on timing). From the same alignment
    (a shared cache) the files written on the cluster are byte-identical to local ones.
    """
    lst = write_csv(tmp_path / "pairs.csv", [
        "bg,fg,out,options",
        f"{pair.bg},{pair.fg},a.mkv,--preset ultrafast --audio none",
        f"{pair_lossless.bg},{pair_lossless.fg},b.mkv,--preset ultrafast --audio none",
    ])
    for name, extra, cache in (("local", [], "a"), ("dask", ["--executor", "dask"], "b"),
                               ("dask-same-cache", ["--executor", "dask"], "a")):
        r = run("-q", "batch", lst, "-o", tmp_path / name, "--jobs", "2", *extra,
                env={"VIDKOMPY_VS_CACHE": str(tmp_path / f"cache-{cache}")})
        assert r.returncode == 0, r.stderr
        assert "Traceback" not in r.stderr
        doc = json.loads((tmp_path / name / "summary.json").read_text())
        assert [p["status"] for p in doc["pairs"]] == ["done", "done"]
        assert all(probe(p["output"]).frames == 175 for p in doc["pairs"])
    for f in ("a.align.json", "b.align.json"):
        local = (tmp_path / "local" / f).read_bytes()
        assert (tmp_path / "dask-same-cache" / f).read_bytes() == local
        a, b = json.loads(local), json.loads((tmp_path / "dask" / f).read_text())
        assert a["temporal"] == b["temporal"]
        ca, cb = a["spatial"].pop("confidence"), b["spatial"].pop("confidence")
        assert a == b and ca == pytest.approx(cb, abs=1e-12)


def test_ctrl_c_keeps_finished_pairs_only(pair, tmp_path):
    lst = write_csv(tmp_path / "pairs.csv", [
        "bg,fg,out,options",
        f"{pair.bg},{pair.fg},a.mp4,--preset ultrafast --audio none",
        f"{pair.bg},{pair.fg},b.mp4,--preset veryslow --audio none",
        f"{pair.bg},{pair.fg},c.mp4,--preset veryslow --audio none",
    ])
    out = tmp_path / "out"
    p = subprocess.Popen([sys.executable, "-m", "vidkompy_vs", "-q", "batch", str(lst), "-o", str(out), "--jobs", "2"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 60
    while time.time() < deadline and not ((out / "a.mp4").exists() and list(out.glob(".[bc].part-*"))):
        time.sleep(0.05)
    assert (out / "a.mp4").exists(), "the first pair did not finish"
    p.send_signal(signal.SIGINT)
    _, err = p.communicate(timeout=60)
    assert p.returncode == 130, err
    assert "Traceback" not in err
    doc = json.loads((out / "summary.json").read_text())
    status = {q["pair"]: q["status"] for q in doc["pairs"]}
    assert status["a"] == "done" and "interrupted" in (status["b"], status["c"])
    assert not list(out.glob(".*part*"))
    assert {f.name for f in out.glob("*.mp4")} == {f"{k}.mp4" for k, s in status.items() if s == "done"}


def test_read_pairs_paths_and_errors(tmp_path):
    sub = tmp_path / "lists"
    sub.mkdir()
    lst = write_csv(sub / "p.csv", ["BG,FG,options", "clips/bg.mp4,/abs/fg.mov,\"--crf 20 --x 10\"", ""])
    (pp,) = read_pairs(lst, tmp_path / "out")
    assert pp.bg == str(sub / "clips/bg.mp4") and pp.fg == "/abs/fg.mov"
    assert pp.out == str(tmp_path / "out" / "fg.mp4") and pp.align == str(tmp_path / "out" / "fg.align.json")
    assert pp.options == ("--crf", "20", "--x", "10") and pp.base == str(sub)
    args = comp_args(pp.bg, pp.fg, pp.out, ["--align", "a.json", "--align-preset", "p/fast.json"])
    _rebase(args, pp.base)
    assert (args.align_file, args.align_preset) == (str(sub / "a.json"), str(sub / "p/fast.json"))
    args = comp_args(pp.bg, pp.fg, pp.out, ["--align-preset", "robust"])
    _rebase(args, pp.base)
    assert args.align_preset == "robust"
    for rows, needle in ((["bg,out", "a,b"], "must name the columns"), (["bg,fg"], "no pairs"),
                         (["bg,fg,out", "a,b,x.mp4", "c,d,x.mkv"], "same output name"),
                         (["bg,fg", "a"], "bg and fg are required"), (["bg,fg,options", "a,b,\"--x '1\""], "options"),
                         (["bg,fg,zoom", "a,b,1"], "must name the columns"),
                         # a row's output is a later row's input: written before that row read it
                         (["bg,fg,out", f"a,b,{tmp_path / 'c.mp4'}", "c.mp4,d,two.mp4"],
                          "pair c's output .*c.mp4 would overwrite pair two's bg")):
        with pytest.raises(VidkompyError, match=needle):
            read_pairs(write_csv(tmp_path / "bad.csv", rows), tmp_path / "out")
    # the list itself where the summary goes
    (tmp_path / "out").mkdir()
    lst = write_csv(tmp_path / "out" / "summary.csv", ["bg,fg", "a,b"])
    with pytest.raises(VidkompyError, match="the summary .* would overwrite the pairs list"):
        read_pairs(lst, tmp_path / "out")
    assert lst.read_text().startswith("bg,fg")
    # --help in a pair's options: an error of that pair, not comp's help on stdout and an empty run
    with pytest.raises(VidkompyError, match="--help is not an option"):
        comp_args(pp.bg, pp.fg, pp.out, ["--help"])


@pytest.mark.parametrize("args, needle", [
    (["--jobs", "0"], "--jobs must be at least 1"),
    (["--scheduler", "tcp://127.0.0.1:1"], "--scheduler is for --executor dask"),
])
def test_batch_bad_options(tmp_path, args, needle):
    lst = write_csv(tmp_path / "p.csv", ["bg,fg", "a.mp4,b.mp4"])
    r = run("batch", lst, "-o", tmp_path / "out", *args)
    assert r.returncode == 2 and needle in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
    r = run("batch", tmp_path / "nope.csv", "-o", tmp_path / "out")
    assert r.returncode == 2 and "no such file" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
def test_batch_summary_onto_a_pipe(tmp_path):
    """The summary, written last, onto a pipe: refused before any pair runs (it replaced
    the pipe, or hung on it, after every pair had run)."""
    lst = write_csv(tmp_path / "p.csv", ["bg,fg", "a.mp4,b.mp4"])
    (tmp_path / "out").mkdir()
    os.mkfifo(tmp_path / "out" / "summary.json")
    r = run("batch", lst, "-o", tmp_path / "out")
    assert r.returncode == 2 and "not a regular file" in r.stderr and (tmp_path / "out/summary.json").is_fifo()
