"""The results of chapter 6, computed once: every experiment at the chapter's settings, stored in
``experiments.npz`` (no pickles) so that the notebook only loads and plots.

:func:`run_all` runs every experiment at :data:`CHAPTER_SETTINGS` and adds the summary;
:func:`build_experiments_cache` (a stage of ``make checkpoints``) writes its tables with
:func:`save_tables`; :func:`load_experiments_cache` reads them back (:func:`load_tables`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Mapping

import pandas as pd

from .. import tables as _tables
from ..model import TinyGPT
from ..paths import CHECKPOINT_DIR, committed_file
from ..reward import load_reward_model
from ..runtime import ForkedCall, single_threaded_blas
from ..tokenizer import VocabularyTokenizer
from .annotation import NoiseSettings, annotation_experiment
from .hacking import HackingSettings, reward_hacking_experiment
from .scale import ScaleSettings, scalability_experiment
from .shift import ShiftSettings, distribution_shift_experiment
from .summary import summary_table

CACHE_FILE = "experiments.npz"
CACHE_FORMAT = "experiments-npz-1"


# ============================================================================ the npz store
def save_tables(tables: Mapping[str, pd.DataFrame], path: str | Path) -> Path:
    """Write every table to one ``.npz`` tagged :data:`CACHE_FORMAT` (``tables.save_tables``: no pickles)."""
    return _tables.save_tables(tables, path, CACHE_FORMAT)


def load_tables(path: str | Path) -> dict[str, pd.DataFrame]:
    """Read a file written by :func:`save_tables` (``tables.load_tables``, ``allow_pickle=False``)."""
    return _tables.load_tables(path, CACHE_FORMAT, "an experiments cache")


def load_experiments_cache(directory: str | Path = CHECKPOINT_DIR) -> dict[str, pd.DataFrame]:
    """The cached chapter-6 tables (``experiments.npz``; rebuild with ``make checkpoints``)."""
    path = committed_file(directory, CACHE_FILE)
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


def run_all(tok: VocabularyTokenizer, sft: TinyGPT, rm, settings: ChapterSettings | None = None,
            progress: bool = False, workers: int = 1) -> dict[str, pd.DataFrame]:
    """Every experiment at ``settings`` and the summary: all the chapter's tables.

    BLAS runs on one thread (``runtime.single_threaded_blas`` explains why: small matrices, and a busy
    second core would slow the products down tenfold); results do not depend on the core count.
    With ``workers=2`` the reward-model-only experiments run in a second, forked process while
    this one runs PPO (Linux only: "spawn", the default elsewhere, would re-run the caller's
    script in the child); the tables are the same either way, and where no second process can
    be forked everything runs here, one experiment after the other.
    """
    cfg = settings or CHAPTER_SETTINGS
    with ForkedCall(_label_experiments, tok, sft, rm, cfg.noise, cfg.scale, False, enabled=workers > 1) as side:
        with single_threaded_blas():
            hacking, extras = reward_hacking_experiment(tok, sft, rm, cfg.hacking, progress=progress,
                                                        return_runs=True)
            shift = distribution_shift_experiment(tok, sft, rm, cfg.shift, progress=progress, hacking_extras=extras)
        labels = side.result()
        if labels is None:                                   # no second process, or it failed: run them here
            labels = _label_experiments(tok, sft, rm, cfg.noise, cfg.scale, progress)
    tables = {**hacking}
    tables.update({k: labels[k] for k in ("noise_curves", "noise_mitigations")})
    tables.update(shift)
    tables.update({k: labels[k] for k in ("scale_width", "label_curve", "scale_extrapolation", "scale_mitigations")})
    tables["summary"] = summary_table(tables)
    tables["settings"] = pd.DataFrame([{"experiment": k, "settings": repr(v)} for k, v in asdict(cfg).items()])
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
