"""Automatic checks for the exercises at the end of each chapter.

Each ``check_*`` function runs the learner's function on a few hand-picked inputs, compares
it with the course's reference implementation, prints a clear verdict and returns True or
False. A stub that still raises ``NotImplementedError`` gets a friendly reminder, never a
traceback, so a notebook with unfinished exercises still runs top to bottom.
"""

from __future__ import annotations

from typing import Callable

import numpy as np


def _run(name: str, cases: list[tuple[tuple, object]], fn: Callable, compare: Callable[[object, object], bool]) -> bool:
    for args, expected in cases:
        try:
            got = fn(*args)
        except NotImplementedError:
            print(f"{name}: not implemented yet. Write your solution in the cell above and re-run it.")
            return False
        except Exception as exc:  # the learner's code: report, do not crash the notebook
            print(f"{name}: your function raised {type(exc).__name__}: {exc}")
            return False
        if not compare(got, expected):
            print(f"{name}: not yet. For input {args!r} the expected result is {expected!r}, yours gave {got!r}.")
            return False
    print(f"{name}: correct on all {len(cases)} checks.")
    return True


def _close(rtol: float = 1e-6, atol: float = 1e-9):
    return lambda got, want: np.allclose(np.asarray(got, dtype=float), np.asarray(want, dtype=float), rtol=rtol, atol=atol)


# ---------------------------------------------------------------------------- chapter 1
def _reference_nll(logits: np.ndarray, target: int) -> float:
    z = np.asarray(logits, dtype=np.float64)
    m = z.max()
    return float(m + np.log(np.exp(z - m).sum()) - z[target])


def check_nll_one_position(fn: Callable[[np.ndarray, int], float]) -> bool:
    """Exercise 1.1: -log softmax(z)[w], including uniform logits (= ln V) and huge logits."""
    cases = [
        ((np.array([2.0, 1.0, 0.1]), 0), _reference_nll(np.array([2.0, 1.0, 0.1]), 0)),
        ((np.zeros(100), 7), float(np.log(100))),
        ((np.array([1000.0, 0.0, -1000.0]), 1), 1000.0),
        ((np.array([-3.0, 5.0, 0.5, 0.5]), 2), _reference_nll(np.array([-3.0, 5.0, 0.5, 0.5]), 2)),
    ]
    return _run("Exercise 1 (cross-entropy of one position)", cases, fn, _close())


def check_perplexity(fn: Callable[[float, int], tuple[float, float]]) -> bool:
    """Exercise 1.2: perplexity e^L and how many times smaller it is than V."""
    cases = [((float(np.log(100)), 100), (100.0, 1.0)), ((2.0, 1000), (np.exp(2.0), 1000 / np.exp(2.0))),
             ((0.0, 50), (1.0, 50.0))]
    return _run("Exercise 2 (perplexity)", cases, fn, _close())


# ---------------------------------------------------------------------------- chapter 2
def check_sft_mask(fn: Callable[[list, int], np.ndarray]) -> bool:
    """Exercise 2.1: the loss mask over the targets of ``<bos> <q> prompt <a> response <eos>``."""
    def ref(ids, start):
        m = np.zeros(len(ids) - 1)
        m[start - 1:] = 1.0
        return m

    cases = [(([1, 4, 10, 11, 5, 20, 21, 2], 5), ref([1, 4, 10, 11, 5, 20, 21, 2], 5)),
             (([1, 4, 10, 5, 2], 4), ref([1, 4, 10, 5, 2], 4)),
             (([1, 4, 10, 11, 12, 13, 5, 30, 2], 7), ref([1, 4, 10, 11, 12, 13, 5, 30, 2], 7))]
    return _run("Exercise 1 (SFT loss mask)", cases, fn, lambda g, w: np.array_equal(np.asarray(g, dtype=float), w))


def check_masked_mean(fn: Callable[[np.ndarray, np.ndarray], float]) -> bool:
    """Exercise 2.2: Σ m_t ℓ_t / Σ m_t, and 0.0 for an empty mask."""
    ell = np.array([2.0, 1.0, 4.0, 3.0])
    cases = [((ell, np.array([0, 0, 1, 1.0])), 3.5), ((ell, np.ones(4)), 2.5), ((ell, np.zeros(4)), 0.0)]
    return _run("Exercise 2 (masked mean)", cases, fn, _close())
