"""Every setting of the prepass, with its one default and its meaning.

Presets (``presets/<name>.json`` or any JSON file) load into :class:`Settings`: a missing
key takes its default here, an unknown or mistyped one is a one-line error.
"""

from __future__ import annotations

import dataclasses
import json
import os
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import VidkompyError

__all__ = ["FingerprintSettings", "AudioSettings", "TemporalParams", "SpatialSettings", "Settings", "load_preset",
           "PRESET_DIR"]

PRESET_DIR = Path(__file__).resolve().parent / "presets"  # package data (any install)
DECODERS = ("av", "vs")


def _n(default: Any, lo: float, hi: float) -> Any:
    """A numeric setting's one default and the range a preset may set it in: outside it
    the prepass would loop for ever, divide by zero or ask for terabytes."""
    return field(default=default, metadata={"range": (lo, hi)})


@dataclass(frozen=True)
class FingerprintSettings:
    """The small grey planes every frame is reduced to for the time match."""

    size: tuple[int, int] = _n((64, 36), 4, 256)  # width, height of a plane
    decoder: str = "av"  # "av" (in-process, PyAV) or "vs" (the frame server); VFR inputs always use "vs"


@dataclass(frozen=True)
class AudioSettings:
    """The audio line (GCC-PHAT), a prior for the visual match when both inputs have sound."""

    rate: int = _n(8000, 1000, 192000)  # samples per second the tracks are decoded at
    windows: int = _n(12, 1, 1000)  # windows of FG's sound matched against BG's
    window_s: float = _n(1.5, 0.1, 60)  # length of each window
    min_confidence: float = _n(0.3, 0, 1)  # below this the audio line is not used


@dataclass(frozen=True)
class TemporalParams:
    """Knobs of the visual matcher (presets set them; defaults are the 'default' preset)."""

    coarse_cells: float = _n(2.0e6, 1e3, 1e9)  # max cells in the coarse FG x BG bin matrix
    min_bin_frames: float = _n(2.0, 1, 1e4)  # finest bin level, in frames of the slower input
    level_factor: int = _n(4, 2, 64)  # bin size shrinks by this much per level
    kmax_bins: int = _n(3, 1, 64)  # max BG bins advanced per FG bin (rates up to 3x)
    band_bins: float = _n(2.0, 0, 1000)  # half-width of the refinement band, in bins of the previous level
    band_frames: int = _n(3, 0, 10000)  # extra half-width at frame level
    tie: float = _n(0.0005, 0, 1)  # timeline penalty per BG frame^2 on ambiguous rows, at least ...
    tie_cost: float = _n(3.0, 0, 1000)  # ... this many times the row's own match cost: noisy matches lean on
    # the timeline, near-perfect ones keep a real cost difference of a few 1e-4 (drift, ramps)
    fit_window_s: float = _n(0.25, 0, 3600)  # narrowest sigma of the local timeline fit
    min_confidence: float = _n(0.35, 0, 1)  # below this the match is treated as unrelated
    prior_band_s: float = _n(3.0, 0, 3600)  # half-width of the coarse band around an audio prior
    chunk: int = _n(128, 1, 1 << 20)  # FG rows per cost chunk
    register: bool = True  # sub-pixel re-registration of FG fingerprints on matched pairs
    cells: bool = True  # sharpen the tie-break timeline with the anchors' frame cells

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TemporalParams:
        return _build(cls, d, "temporal")


@dataclass(frozen=True)
class SpatialSettings:
    """Where FG sits in BG."""

    refine: bool = True  # sub-pixel refinement (and drift track) on the matched frame pairs
    anchors: bool = True  # without sound, find the footprint from FG's own fingerprints first


@dataclass(frozen=True)
class Settings:
    """All of a preset."""

    fingerprint: FingerprintSettings = field(default_factory=FingerprintSettings)
    audio: AudioSettings = field(default_factory=AudioSettings)
    temporal: TemporalParams = field(default_factory=TemporalParams)
    spatial: SpatialSettings = field(default_factory=SpatialSettings)
    description: str = ""

    @classmethod
    def from_dict(cls, d: Any, where: str = "preset") -> Settings:
        if not isinstance(d, dict):
            raise VidkompyError(f"{where}: a preset must be a JSON object")
        parts = {f.name: f for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - set(parts))
        if unknown:
            raise VidkompyError(f"{where}: unknown setting(s): {', '.join(unknown)}")
        kw: dict[str, Any] = {}
        for name, v in d.items():
            if name == "description":
                kw[name] = str(v)
                continue
            if not isinstance(v, dict):
                raise VidkompyError(f"{where}: {name} must be an object")
            kw[name] = _build(_SECTIONS[name], v, f"{where}: {name}")
        return cls(**kw)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


_SECTIONS: dict[str, type] = {"fingerprint": FingerprintSettings, "audio": AudioSettings,
                              "temporal": TemporalParams, "spatial": SpatialSettings}


def _build(cls: type, d: dict[str, Any], where: str) -> Any:
    """``cls`` from a JSON object: every key known and of its field's type."""
    hints = typing.get_type_hints(cls)
    unknown = sorted(set(d) - set(hints))
    if unknown:
        raise VidkompyError(f"{where}: unknown setting(s): {', '.join(unknown)}")
    ranges = {f.name: f.metadata.get("range") for f in dataclasses.fields(cls)}
    kw = {k: _typed(v, hints[k], f"{where}.{k}", ranges[k]) for k, v in d.items()}
    if kw.get("decoder") == "ffmpeg":
        kw["decoder"] = "av"  # its name while it was an ffmpeg pipe: presets written then still load
    if kw.get("decoder", DECODERS[0]) not in DECODERS:
        raise VidkompyError(f"{where}.decoder must be one of {', '.join(DECODERS)}, got {kw['decoder']!r}")
    return cls(**kw)


def _typed(v: Any, hint: Any, where: str, span: tuple[float, float] | None = None) -> Any:
    lo, hi = span or (0, float("inf"))
    bounds = f"from {lo:g} to {hi:g}" if span else ">= 0"
    if hint is bool:
        if not isinstance(v, bool):
            raise VidkompyError(f"{where} must be true or false, got {v!r}")
        return v
    if hint in (int, float):
        ok = isinstance(v, int) if hint is int else isinstance(v, (int, float))
        if isinstance(v, bool) or not ok or not lo <= v <= hi:  # (NaN fails both)
            kind = "a whole number" if hint is int else "a number"
            raise VidkompyError(f"{where} must be {kind} {bounds}, got {v!r}")
        return hint(v)
    if hint is str:
        if not isinstance(v, str):
            raise VidkompyError(f"{where} must be a string, got {v!r}")
        return v
    # tuple[int, int]: a plane size
    if not (isinstance(v, list) and len(v) == 2 and all(isinstance(t, int) and not isinstance(t, bool)
                                                        and lo <= t <= hi for t in v)):
        raise VidkompyError(f"{where} must be [width, height] (whole numbers {bounds}), got {v!r}")
    return (int(v[0]), int(v[1]))


def load_preset(name_or_path: str | os.PathLike[str] = "default") -> Settings:
    """A preset by name (``presets/<name>.json``) or path, over the defaults above."""
    p = Path(name_or_path)
    if not (p.suffix == ".json" or os.sep in str(name_or_path)) or not p.exists():
        cand = PRESET_DIR / f"{name_or_path}.json"
        if cand.exists():
            p = cand
        elif not p.exists():
            names = sorted(f.stem for f in PRESET_DIR.glob("*.json")) if PRESET_DIR.is_dir() else []
            raise VidkompyError(f"unknown preset {str(name_or_path)!r}; choose one of {', '.join(names) or '(none)'}"
                                " or give a path to a JSON file")
    if not p.is_file():
        # (a FIFO or a device would block the read, a folder fail it obscurely)
        raise VidkompyError(f"{p}: not a file")
    try:
        d = json.loads(p.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError) as e:
        raise VidkompyError(f"{p}: not a readable JSON preset ({e})") from None
    return Settings.from_dict(d, str(p))
