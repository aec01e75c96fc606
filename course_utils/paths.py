"""Where the course keeps its files.

``DATA_DIR`` holds the hand-written knowledge base and the datasets built from it;
``CHECKPOINT_DIR`` the small committed model checkpoints. A notebook writes no file: figures are
shown, tables printed, and the chapters' results come from the committed checkpoints.
"""

from __future__ import annotations

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
DATA_DIR = REPO_ROOT / "data"
CHECKPOINT_DIR = DATA_DIR / "checkpoints"


LOG_DIR_NAME = "logs"


def committed_file(directory: str | Path, name: str) -> Path:
    """``directory / name``, a file that ``make checkpoints`` writes; FileNotFoundError naming the
    rebuild command if it is missing."""
    path = Path(directory) / name
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing; rebuild the checkpoints with `make checkpoints`")
    return path


def log_path(checkpoint_dir: Path, stage: str) -> Path:
    """Where a stage's training log lives next to its checkpoint: ``<dir>/logs/<stage>.csv``."""
    path = Path(checkpoint_dir) / LOG_DIR_NAME / f"{stage}.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def save_log(log, checkpoint_dir: Path, stage: str) -> Path:
    """Write a training log (a DataFrame, one row per step or iteration) as CSV next to the checkpoints."""
    path = log_path(checkpoint_dir, stage)
    log.to_csv(path, index=False, float_format="%.6g")
    return path
