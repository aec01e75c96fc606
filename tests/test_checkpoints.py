"""The committed checkpoints are exactly what `python -m course_utils.checkpoints build` produces."""

from pathlib import Path

import numpy as np
import pytest

from course_utils import checkpoints
from course_utils.paths import CHECKPOINT_DIR


def test_compare_reports_differences(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir(), b.mkdir()
    np.savez(a / "m.npz", w=np.zeros(3))
    np.savez(b / "m.npz", w=np.array([0.0, 0.0, 1.0]))
    assert checkpoints.compare(a, a) == []
    assert checkpoints.compare(a, b) == ["m.npz:w: max difference 1"]


def test_missing_checkpoint_says_how_to_rebuild(tmp_path):
    with pytest.raises(FileNotFoundError, match="make checkpoints"):
        checkpoints.load("sft", tmp_path)


def test_rebuild_reproduces_the_committed_checkpoints(tmp_path):
    written = checkpoints.build(tmp_path)
    assert {p.name for p in written} == {p.name for p in CHECKPOINT_DIR.iterdir() if p.suffix in {".npz", ".json"}}
    assert checkpoints.compare(CHECKPOINT_DIR, tmp_path) == []


def test_checkpoints_load_and_agree_with_the_tokenizer():
    tok = checkpoints.load_tokenizer()
    for name in ("base", "sft"):
        model = checkpoints.load(name)
        assert model.config.vocab_size == tok.vocab_size
    assert not all(np.array_equal(checkpoints.load("base").params[k], checkpoints.load("sft").params[k])
                   for k in checkpoints.load("base").params)
