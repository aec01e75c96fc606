"""The exercise checkers accept the reference, reject wrong answers and never crash."""

import numpy as np

from course_utils import exercises as ex


def test_chapter1_checkers(capsys):
    ref = lambda z, w: float(np.max(z) + np.log(np.exp(z - np.max(z)).sum()) - z[w])  # noqa: E731
    assert ex.check_nll_one_position(ref) is True
    naive = lambda z, w: float(-np.log(np.exp(z[w]) / np.exp(z).sum()))  # overflows at logits of 1000  # noqa: E731
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
        assert ex.check_nll_one_position(naive) is False
    assert ex.check_perplexity(lambda L, V: (float(np.exp(L)), V / float(np.exp(L)))) is True
    assert ex.check_perplexity(lambda L, V: (L, V)) is False


def test_chapter2_checkers():
    def ref_mask(ids, start):
        m = np.zeros(len(ids) - 1)
        m[start - 1:] = 1
        return m

    assert ex.check_sft_mask(ref_mask) is True
    off_by_one = lambda ids, start: np.r_[np.zeros(start), np.ones(len(ids) - 1 - start)]  # noqa: E731
    assert ex.check_sft_mask(off_by_one) is False
    assert ex.check_masked_mean(lambda losses, m: float((losses * m).sum() / m.sum()) if m.sum() else 0.0) is True
    assert ex.check_masked_mean(lambda losses, m: float((losses * m).mean())) is False


def test_unfinished_and_crashing_stubs_get_a_message(capsys):
    def stub(*args):
        raise NotImplementedError

    assert ex.check_masked_mean(stub) is False
    assert "not implemented yet" in capsys.readouterr().out
    assert ex.check_masked_mean(lambda losses, m: 1 / 0) is False
    assert "ZeroDivisionError" in capsys.readouterr().out
