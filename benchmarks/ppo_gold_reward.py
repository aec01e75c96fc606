"""PPO against the gold judge itself: does the algorithm climb a reward that cannot be hacked?

    .venv/bin/python benchmarks/ppo_gold_reward.py [--lam 0.95 1.0] [--seed 0] [--json OUT]

From the committed SFT model, PPO (``ppo.DEFAULT_CONFIG`` but for λ) on the RL prompts, with the
gold judge's overall score (times 4, about the reward model's spread) as the reward instead of the
reward model. Printed for each λ: the gold score of the greedy answers to the RL prompts and to the
held-out questions before and after, and the paired held-out gain with its 95% bootstrap interval.

This separates the two things PPO needs: a reward that ranks answers like the judge (here, by
construction) and an algorithm that turns it into better answers. The reward arrives at the last
token while the case an answer is about is decided by its first words, so with λ < 1 GAE passes
almost none of it back to them (chapter 5, "Advantages").
"""

from __future__ import annotations

import json
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from course_utils import checkpoints, data, judge  # noqa: E402
from course_utils.ppo import DEFAULT_CONFIG, sample_answers, train_ppo  # noqa: E402
from course_utils.training import encode_sft  # noqa: E402
from eval_reference import MAX_NEW, _values_after, ci, report  # noqa: E402

SCALE = 4.0


class GoldReward:
    """A reward model that is the gold judge: the prompt's tokens identify its case."""

    def __init__(self, tok, items, scenarios) -> None:
        self.tok = tok
        self.case = {tuple(encode_sft(tok, e["prompt"])[0]): scenarios[e["scenario_id"]] for e in items}

    def forward(self, tokens: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        answers, cases = [], []
        for row, n in zip(tokens, lengths):
            ids = [int(t) for t in row[:n]]
            start = ids.index(self.tok.a_id) + 1
            cases.append(self.case[tuple(ids[:start])])
            answers.append(self.tok.decode([t for t in ids[start:] if t != self.tok.eos_id]))
        return SCALE * judge.judge_many(answers, cases).overall.to_numpy()


def greedy_gold(model, tok, items, scenarios) -> np.ndarray:
    answers = sample_answers(model, tok, [e["prompt"] for e in items], 0.0, MAX_NEW)
    return judge.judge_many(answers, [scenarios[e["scenario_id"]] for e in items]).overall.to_numpy()


def main(argv: list[str]) -> int:
    lams = [float(x) for x in _values_after(argv, "--lam")] or [0.95, 1.0]
    seed = int(argv[argv.index("--seed") + 1]) if "--seed" in argv else 0
    tok = checkpoints.load_tokenizer()
    scenarios = {s["id"]: s for s in data.load_scenarios()}
    rl, heldout = data.load_rl_prompts(), data.load_eval_prompts()
    sft = checkpoints.load("sft")
    before_rl, before_ho = greedy_gold(sft, tok, rl, scenarios), greedy_gold(sft, tok, heldout, scenarios)
    out = {"sft": {"rl_prompts": ci(before_rl), "heldout": ci(before_ho)}}
    for lam in lams:
        cfg = replace(DEFAULT_CONFIG, lam=lam, seed=seed)
        policy, log = train_ppo(checkpoints.load("sft"), checkpoints.load("sft"), GoldReward(tok, rl, scenarios),
                                tok, rl, cfg, progress=False)
        after_rl, after_ho = greedy_gold(policy, tok, rl, scenarios), greedy_gold(policy, tok, heldout, scenarios)
        out[f"lam={lam}"] = {"rl_prompts": ci(after_rl), "rl_gain": ci(after_rl - before_rl),
                             "heldout": ci(after_ho), "heldout_gain": ci(after_ho - before_ho),
                             "kl_final": round(float(log.kl.iloc[-1]), 3)}
        print(json.dumps({f"lam={lam}": out[f"lam={lam}"]}), flush=True)
    return report(out, argv)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
