"""The mini-batch walk that SFT, the reward model and DPO share."""

import numpy as np

from course_utils.training import shuffled_batches


def test_every_example_once_per_epoch_in_ceil_n_over_b_batches():
    batches = list(shuffled_batches(10, 4, 3, np.random.default_rng(0)))
    assert [s for _, s, _, _ in batches] == list(range(1, 10))             # 3 epochs x ceil(10 / 4) steps
    assert [e for e, _, _, _ in batches] == [1, 1, 1, 2, 2, 2, 3, 3, 3]
    assert [len(i) for _, _, i, _ in batches] == [4, 4, 2] * 3
    assert [last for *_, last in batches] == [False, False, True] * 3
    for epoch in (1, 2, 3):
        seen = np.concatenate([i for e, _, i, _ in batches if e == epoch])
        assert sorted(seen) == list(range(10))
    first, second = (np.concatenate([i for e, _, i, _ in batches if e == k]) for k in (1, 2))
    assert not np.array_equal(first, second), "each epoch draws its own order"


def test_the_permutation_is_drawn_when_its_epoch_starts():
    """A caller that draws from the same generator between steps (SFT's prompt dropout) gets the
    same stream as the loop written out by hand: one permutation at each epoch's start."""
    rng = np.random.default_rng(7)
    walked = []
    for _, _, idx, _ in shuffled_batches(5, 2, 2, rng):
        walked.append((idx.tolist(), float(rng.random())))
    ref = np.random.default_rng(7)
    by_hand = []
    for _ in range(2):
        order = ref.permutation(5)
        for b in range(3):
            by_hand.append((order[2 * b:2 * b + 2].tolist(), float(ref.random())))
    assert walked == by_hand


def test_no_examples_or_no_epochs_give_no_steps():
    assert list(shuffled_batches(0, 4, 2, np.random.default_rng(0))) == []
    assert list(shuffled_batches(5, 4, 0, np.random.default_rng(0))) == []
