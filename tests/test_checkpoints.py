"""The committed checkpoints, their build record, and training determinism.

The full rebuild-and-compare is ``make check-checkpoints`` (minutes of training, bit-exact only
in the numerical environment that built them), not part of ``make test``. What ``make test``
keeps is the property that makes the rebuild meaningful: the same seed on the same machine
gives the same weights.
"""

import json
import os
import shutil
import sys

import numpy as np
import pytest

from course_utils import checkpoints, data, runtime
from course_utils.paths import CHECKPOINT_DIR
from course_utils.training import PretrainConfig, SFTConfig, corpus_stream, new_model, pretrain, sft


def test_compare_reports_differences(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir(), b.mkdir()
    np.savez(a / "m.npz", w=np.zeros(3))
    np.savez(b / "m.npz", w=np.array([0.0, 0.0, 1e-9]))
    assert checkpoints.compare(a, a, exact=True) == []
    assert checkpoints.compare(a, b) == []                       # within float tolerance
    assert checkpoints.compare(a, b, exact=True) == ["m.npz:w: max difference 1e-09"]


def test_missing_checkpoint_says_how_to_rebuild(tmp_path):
    with pytest.raises(FileNotFoundError, match="make checkpoints"):
        checkpoints.load("sft", tmp_path)


def test_build_info_records_the_environment_and_every_metric():
    info = json.loads((CHECKPOINT_DIR / checkpoints.BUILD_INFO).read_text())
    assert set(info["environment"]) == set(checkpoints.fingerprint())
    assert info["environment"]["blas"], "the BLAS library that built the checkpoints is recorded"
    assert set(info["metrics"]) == set(checkpoints.TOLERANCES)


# --- the build order: stages that stand in for the real ones (top-level, so a second process can run them)
def _stage(name: str, needs: tuple[str, ...], out_dir, progress=False):
    for before in needs:
        assert (out_dir / f"{before}.txt").exists(), f"{name} started before {before} was written"
    path = out_dir / f"{name}.txt"
    path.write_text(str(os.getpid()))
    return path


def _reward(tok, out_dir, progress=False):
    return _stage("reward", (), out_dir)


def _ppo(tok, out_dir, progress=False):
    return _stage("ppo", ("reward",), out_dir)


def _ablations(tok, out_dir, progress=False):
    return _stage("scorecard", ("reward",), out_dir)


def _first_stages(out_dir, clock, progress):
    for name in ("tokenizer", "base", "sft"):
        clock.next(name)
    return "tokenizer"


@pytest.mark.parametrize("fork", [True, False])
def test_build_runs_side_stages_after_the_reward_model_in_a_second_process(tmp_path, monkeypatch, fork):
    monkeypatch.setattr(checkpoints, "_build_first_stages", _first_stages)
    monkeypatch.setattr(checkpoints, "load_tokenizer", lambda directory: "tokenizer")
    monkeypatch.setattr(checkpoints, "LATER_STAGES",
                        [("reward", _reward), ("ppo", _ppo), ("scorecard", _ablations)])
    if not fork:          # where no process can be forked, the side stage is built here, last
        monkeypatch.setattr(checkpoints, "ForkedCall",
                            lambda fn, *args: runtime.ForkedCall(fn, *args, enabled=False))
    written = checkpoints.build(tmp_path, stages=("reward", "ppo", "scorecard"))
    assert [p.name for p in written[3:]] == ["reward.txt", "ppo.txt", "scorecard.txt"]
    pids = {name: (tmp_path / f"{name}.txt").read_text() for name in ("reward", "ppo", "scorecard")}
    assert pids["reward"] == pids["ppo"] == str(os.getpid())
    second_process = fork and sys.platform.startswith("linux")
    assert (pids["scorecard"] != str(os.getpid())) == second_process


def _fake_rebuild(tmp_path, environment=None, metric_shift=0.0, touch_weights=False):
    """A copy of the committed checkpoints posing as a rebuild with another environment or metrics."""
    new = tmp_path / "rebuilt"
    shutil.copytree(CHECKPOINT_DIR, new)
    info = json.loads((new / checkpoints.BUILD_INFO).read_text())
    if environment:
        info["environment"] = {**info["environment"], **environment}
    info["metrics"] = {k: v + metric_shift for k, v in info["metrics"].items()}
    (new / checkpoints.BUILD_INFO).write_text(json.dumps(info))
    if touch_weights:
        with np.load(new / "base.npz") as z:
            arrays = dict(z)
        arrays["param:wte"] = arrays["param:wte"] + np.float32(1e-6)
        with open(new / "base.npz", "wb") as f:
            np.savez(f, **arrays)
    return new


def test_check_is_bit_exact_in_the_same_environment(tmp_path):
    ok, lines = checkpoints.check(rebuilt=_fake_rebuild(tmp_path))
    assert ok and "bit-identical" in lines[-1]
    ok, lines = checkpoints.check(rebuilt=_fake_rebuild(tmp_path / "w", touch_weights=True))
    assert not ok and any(line.startswith("base.npz:param:wte") for line in lines)


def test_check_compares_metrics_in_another_environment(tmp_path):
    other = {"blas": [{"architecture": "Sandybridge"}]}
    ok, lines = checkpoints.check(rebuilt=_fake_rebuild(tmp_path, other, touch_weights=True))
    assert ok and any("blas" in line for line in lines)
    tol = min(checkpoints.TOLERANCES.values())
    ok, lines = checkpoints.check(rebuilt=_fake_rebuild(tmp_path / "far", other, metric_shift=10 * tol))
    assert not ok and any("OUT OF TOLERANCE" in line for line in lines)


def test_checkpoints_load_and_agree_with_the_tokenizer():
    tok = checkpoints.load_tokenizer()
    for name in ("base", "sft", "ppo"):
        model = checkpoints.load(name)
        assert model.config.vocab_size == tok.vocab_size
    assert not all(np.array_equal(checkpoints.load("base").params[k], checkpoints.load("sft").params[k])
                   for k in checkpoints.load("base").params)


def test_float64_loading_keeps_the_weights_and_agrees_with_float32():
    m32, m64 = checkpoints.load("sft"), checkpoints.load("sft", dtype="float64")
    assert m64.params["wte"].dtype == np.float64
    assert all(np.array_equal(m64.params[k], m32.params[k].astype(np.float64)) for k in m32.params)
    tokens = np.array([[1, 5, 9, 13, 2]])
    np.testing.assert_allclose(m64.forward(tokens), m32.forward(tokens), atol=1e-3)


def _short_runs(tok):
    stream = corpus_stream(tok, data.load_corpus())[:20_000]
    a, b = new_model(tok, seed=3), new_model(tok, seed=3)
    for m in (a, b):
        pretrain(m, stream, None, PretrainConfig(steps=8, warmup=2, seed=3), progress=False)
        sft(m, tok, data.load_sft()[:32], SFTConfig(epochs=1, seed=3), progress=False)
    return a, b


def test_same_seed_same_machine_gives_the_same_weights():
    a, b = _short_runs(checkpoints.load_tokenizer())
    assert all(np.array_equal(a.params[k], b.params[k]) for k in a.params)
