"""How much room the reference SFT model leaves for RL, and whether the reward model can find it.

    .venv/bin/python benchmarks/rl_headroom.py [CHECKPOINT_DIR] [--json OUT]

PPO improves a policy only where its samples differ in reward. For two of the wordings SFT trained
on (per case), the RL prompts (``data/rl_prompts.jsonl``, wordings SFT never saw) and the held-out
questions (``data/eval_prompts.jsonl``), with the gold judge:

* ``distinct``: distinct answers among ``N`` samples per prompt at τ = 1 (1 = the policy always says
  the same thing: every advantage is zero and PPO has nothing to learn from);
* ``gold``: the mean gold score of the samples; ``oracle``: of the best of the ``N`` samples per
  prompt (what a perfect reward model could select: the headroom);
* ``best_of_n``: the gold score of the sample the reward model ranks highest, its paired gain over
  the greedy answer with a 95% bootstrap interval over the prompts (what the reward model can
  actually select).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from course_utils import checkpoints, data, judge  # noqa: E402
from course_utils.ppo import sample_answers  # noqa: E402
from course_utils.reward import load_reward_model  # noqa: E402
from eval_reference import MAX_NEW, ci, report  # noqa: E402

N = 8


def headroom(model, rm, tok, items, scen) -> dict:
    prompts = [e["prompt"] for e in items]
    cases = [scen[e["scenario_id"]] for e in items]
    samples = [sample_answers(model, tok, prompts, 1.0, MAX_NEW, seed=k) for k in range(N)]
    gold = np.array([judge.judge_many(s, cases).overall.to_numpy() for s in samples])
    scores = np.array([rm.score(tok, prompts, s) for s in samples])
    greedy = judge.judge_many(sample_answers(model, tok, prompts, 0.0, MAX_NEW), cases).overall.to_numpy()
    picked = gold[scores.argmax(axis=0), np.arange(len(prompts))]
    return {"prompts": len(prompts), "distinct": round(float(np.mean([len({s[i] for s in samples})
                                                                       for i in range(len(prompts))])), 2),
            "greedy": ci(greedy), "gold": ci(gold.mean(axis=0)), "oracle": ci(gold.max(axis=0)),
            "best_of_n": ci(picked), "best_of_n_gain": ci(picked - greedy)}


def main(argv: list[str]) -> int:
    directory = Path(argv[0]) if argv and not argv[0].startswith("--") else checkpoints.CHECKPOINT_DIR
    tok = checkpoints.load_tokenizer(directory)
    sft = checkpoints.load("sft", directory, dtype="float64")
    rm = load_reward_model(directory, dtype="float64")
    scen = {s["id"]: s for s in data.load_scenarios()}
    sft_items = [{"prompt": w, "scenario_id": s["id"]} for s in data.load_scenarios()
                 for w in data.sft_wordings(s)[-2:]]     # two of the wordings SFT trained on, per case
    out = {"samples_per_prompt": N,
           "sft_wordings": headroom(sft, rm, tok, sft_items, scen),
           "rl_prompts": headroom(sft, rm, tok, data.load_rl_prompts(), scen),
           "heldout": headroom(sft, rm, tok, data.load_eval_prompts(), scen)}
    return report(out, argv)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
