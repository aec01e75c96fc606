"""The results of chapter 6, computed once: every experiment at the chapter's settings, stored in
``experiments.npz`` (no pickles) so that the notebook only loads and plots.

:func:`run_all` runs every experiment at :data:`CHAPTER_SETTINGS` and adds the summary;
:func:`build_experiments_cache` (a stage of ``make checkpoints``) writes its tables with
:func:`save_tables`; :func:`load_results` reads them back (:func:`load_tables`).
"""

from __future__ import annotations

import concurrent.futures
import multiprocessing
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Mapping

import numpy as np
import pandas as pd

from ..model import TinyGPT
from ..paths import CHECKPOINT_DIR
from ..ppo import single_threaded_blas
from ..reward import load_reward_model
from ..tokenizer import VocabularyTokenizer
from .annotation import NoiseSettings, annotation_experiment
from .hacking import HackingSettings, reward_hacking_experiment
from .scale import ScaleSettings, scalability_experiment
from .shift import ShiftSettings, distribution_shift_experiment
from .summary import summary_table

CACHE_FILE = "experiments.npz"
CACHE_FORMAT = "experiments-npz-1"


# ============================================================================ the npz store
def _encode_table(name: str, df: pd.DataFrame) -> dict[str, np.ndarray]:
    """Arrays for one table: every column as a numpy array, strings as unicode, NaN as a mask."""
    out = {f"{name}/__columns__": np.array([str(c) for c in df.columns], dtype=str)}
    for k, col in enumerate(df.columns):
        v = df[col].to_numpy()
        key = f"{name}/{k}"
        if v.dtype.kind in "biu":
            out[key] = v.astype(np.int64) if v.dtype.kind != "b" else v.astype(bool)
        elif v.dtype.kind == "f":
            v = v.astype(np.float64)
            nan = np.isnan(v)                  # ±inf is stored as itself (a Gao curve with no peak)
            if nan.any():                      # NaN never equals NaN: store a mask, so rebuilds compare equal
                out[f"{key}:nan"] = nan
                v = np.where(nan, 0.0, v)
            out[key] = v
        else:
            out[key] = np.array(["" if x is None else str(x) for x in v], dtype=str)
    return out


def save_tables(tables: Mapping[str, pd.DataFrame], path: str | Path) -> Path:
    """Write every table to one ``.npz`` (no pickles): column arrays, strings as numpy unicode."""
    arrays: dict[str, np.ndarray] = {"__format__": np.array(CACHE_FORMAT),
                                     "__tables__": np.array(list(tables), dtype=str)}
    for name, df in tables.items():
        if "/" in name:
            raise ValueError(f"table names may not contain '/': {name!r}")
        arrays.update(_encode_table(name, df))
    path = Path(path)
    with open(path, "wb") as f:
        np.savez_compressed(f, **arrays)
    return path


def load_tables(path: str | Path) -> dict[str, pd.DataFrame]:
    """Read a file written by :func:`save_tables` (``allow_pickle=False``)."""
    with np.load(path, allow_pickle=False) as z:
        if "__format__" not in z.files or str(z["__format__"]) != CACHE_FORMAT:
            raise ValueError(f"{path} is not an experiments cache (format {CACHE_FORMAT!r} expected)")
        tables = {}
        for name in z["__tables__"].tolist():
            cols = z[f"{name}/__columns__"].tolist()
            data = {}
            for k, c in enumerate(cols):
                v = z[f"{name}/{k}"]
                if f"{name}/{k}:nan" in z.files:
                    v = np.where(z[f"{name}/{k}:nan"], np.nan, v)
                data[c] = v.tolist() if v.dtype.kind == "U" else v
            tables[name] = pd.DataFrame(data, columns=cols)
    return tables


def load_results(directory: str | Path = CHECKPOINT_DIR) -> dict[str, pd.DataFrame]:
    """The cached chapter-6 tables (``experiments.npz``; rebuild with ``make checkpoints``)."""
    path = Path(directory) / CACHE_FILE
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing; rebuild the checkpoints with `make checkpoints`")
    return load_tables(path)


# ============================================================================ every experiment, the chapter's settings
@dataclass
class ChapterSettings:
    """The settings :func:`build_experiments_cache` runs (one object, so the notebook can print them)."""

    hacking: HackingSettings = field(default_factory=HackingSettings)
    noise: NoiseSettings = field(default_factory=NoiseSettings)
    shift: ShiftSettings = field(default_factory=ShiftSettings)
    scale: ScaleSettings = field(default_factory=ScaleSettings)


CHAPTER_SETTINGS = ChapterSettings()


def _label_experiments(tok: VocabularyTokenizer, sft: TinyGPT, rm, noise: NoiseSettings, scale: ScaleSettings,
                       progress: bool = False) -> dict[str, pd.DataFrame]:
    """The experiments that train only reward models (annotation quality, scalability): they do not
    depend on the PPO runs, so :func:`run_all` can run them in a second process."""
    with single_threaded_blas():
        out = annotation_experiment(tok, sft, noise, progress=progress)
        out.update(scalability_experiment(tok, sft, rm, scale, progress=progress))
    return out


def _start_label_experiments(tok: VocabularyTokenizer, sft: TinyGPT, rm, s: ChapterSettings):
    """(pool, future) of :func:`_label_experiments` in a forked second process, or (None, None) where
    none can be forked (not Linux, or the fork failed)."""
    if not sys.platform.startswith("linux"):
        return None, None
    try:
        pool = concurrent.futures.ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("fork"))
        return pool, pool.submit(_label_experiments, tok, sft, rm, s.noise, s.scale, False)
    except (OSError, RuntimeError, ValueError):         # no second process here: run sequentially
        return None, None


def run_all(tok: VocabularyTokenizer, sft: TinyGPT, rm, settings: ChapterSettings | None = None,
            progress: bool = False, workers: int = 1) -> dict[str, pd.DataFrame]:
    """Every experiment at ``settings`` and the summary: all the chapter's tables.

    BLAS runs on one thread (``ppo.single_threaded_blas`` explains why: small matrices, and a busy
    second core would slow the products down tenfold); results do not depend on the core count.
    With ``workers=2`` the reward-model-only experiments run in a second, forked process while
    this one runs PPO (Linux only: "spawn", the default elsewhere, would re-run the caller's
    script in the child); the tables are the same either way, and where no second process can
    be forked everything runs here, one experiment after the other.
    """
    s = settings or CHAPTER_SETTINGS
    pool, side = _start_label_experiments(tok, sft, rm, s) if workers > 1 else (None, None)
    try:
        with single_threaded_blas():
            hacking, extras = reward_hacking_experiment(tok, sft, rm, s.hacking, progress=progress,
                                                        return_runs=True)
            shift = distribution_shift_experiment(tok, sft, rm, s.shift, progress=progress, hacking_extras=extras)
        labels = None
        if side is not None:
            try:
                labels = side.result()
            except Exception:                                # the second process failed: redo it here
                labels = None
        if labels is None:
            labels = _label_experiments(tok, sft, rm, s.noise, s.scale, progress)
    finally:
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
    tables = {**hacking}
    tables.update({k: labels[k] for k in ("noise_curves", "noise_mitigations")})
    tables.update(shift)
    tables.update({k: labels[k] for k in ("scale_width", "label_curve", "scale_extrapolation", "scale_mitigations")})
    tables["summary"] = summary_table(tables)
    tables["settings"] = pd.DataFrame([{"experiment": k, "settings": repr(v)} for k, v in asdict(s).items()])
    return tables


def build_experiments_cache(tok: VocabularyTokenizer, out_dir: Path, progress: bool = False) -> Path:
    """Run every chapter-6 experiment at the chapter's settings; write ``out_dir / "experiments.npz"``.

    Reads ``sft.npz`` and ``reward.npz`` from ``out_dir`` (the checkpoint builder writes them
    first). Everything is seeded, and no timing is stored, so a rebuild reproduces the file.
    About two minutes of one core; the reward-model-only experiments run in a second process
    (:func:`run_all` with ``workers=2``), so on two cores it takes about a minute and a half.
    """
    out_dir = Path(out_dir)
    sft = TinyGPT.load(out_dir / "sft.npz")
    rm = load_reward_model(out_dir)
    tables = run_all(tok, sft, rm, CHAPTER_SETTINGS, progress=progress, workers=2)
    return save_tables(tables, out_dir / CACHE_FILE)
