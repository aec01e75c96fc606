"""Where the course keeps its files.

``DATA_DIR`` holds the hand-written knowledge base and the datasets built from it;
``CHECKPOINT_DIR`` the small committed model checkpoints; ``cache_dir()`` is the only place
a notebook may write (ignored by git, override with the ``COURSE_CACHE`` variable).
"""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
DATA_DIR = REPO_ROOT / "data"
CHECKPOINT_DIR = DATA_DIR / "checkpoints"


def cache_dir() -> Path:
    """Return (and create) the directory for disposable files: ``$COURSE_CACHE`` or ``.course_cache/``."""
    path = Path(os.environ.get("COURSE_CACHE", REPO_ROOT / ".course_cache"))
    path.mkdir(parents=True, exist_ok=True)
    return path
