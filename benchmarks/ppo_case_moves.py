"""Where PPO's held-out gain over SFT comes from, and where it goes: the gain split by whether each
policy answers the case asked.

    .venv/bin/python benchmarks/ppo_case_moves.py [CHECKPOINT_DIR] [--json OUT]

Greedy answers of the committed SFT and PPO policies to the 64 held-out questions, scored by the gold
judge. Each question falls in one of four groups: both answer the case asked (by the measure of
``eval_reference.addresses_case``), only SFT does (PPO *moved* the answer to another case), only PPO
does, neither does. For each group: the number of questions and the sum of the per-question gains
(PPO - SFT overall score), whose total over the groups is 64 times the mean gain. For the moved
questions, the reward model's score of both answers (does the reward model ask for the move?), and
the mean of each judge metric for both policies.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from course_utils import checkpoints, data, judge  # noqa: E402
from course_utils.reward import load_reward_model  # noqa: E402
from course_utils.sampling import sample_answers  # noqa: E402
from eval_reference import MAX_NEW, addresses_case  # noqa: E402


def case_moves(directory: Path) -> dict:
    """The gain of PPO over SFT split by which policy answers the case asked (see the module docstring)."""
    tok = checkpoints.load_tokenizer(directory)
    scen = {s["id"]: s for s in data.load_scenarios()}
    experts = {sid: data.expert_response(s) for sid, s in scen.items()}
    items = data.load_eval_prompts()
    prompts = [e["prompt"] for e in items]
    cases = [scen[e["scenario_id"]] for e in items]
    answers, verdicts, on_case = {}, {}, {}
    for name in ("sft", "ppo"):
        model = checkpoints.load(name, directory, dtype="float64")
        answers[name] = sample_answers(model, tok, prompts, 0.0, MAX_NEW)
        verdicts[name] = judge.judge_many(answers[name], cases)
        on_case[name] = np.asarray(addresses_case(answers[name], items, experts)) > 0.5
    gain = verdicts["ppo"].overall.to_numpy() - verdicts["sft"].overall.to_numpy()
    s, p = on_case["sft"], on_case["ppo"]
    groups = {"both on the case": s & p, "moved off the case by PPO": s & ~p,
              "moved onto the case by PPO": ~s & p, "neither on the case": ~s & ~p}
    out: dict = {"mean_gain": round(float(gain.mean()), 4),
                 "groups": {k: {"questions": int(m.sum()), "sum_of_gains": round(float(gain[m].sum()), 3)}
                            for k, m in groups.items()}}
    moved = np.where(s & ~p)[0]
    rm = load_reward_model(directory, dtype="float64")
    r_sft = rm.score(tok, [prompts[i] for i in moved], [answers["sft"][i] for i in moved])
    r_ppo = rm.score(tok, [prompts[i] for i in moved], [answers["ppo"][i] for i in moved])
    out["moved"] = [{"case": items[i]["scenario_id"], "reward_sft": round(float(a), 2),
                     "reward_ppo": round(float(b), 2)} for i, a, b in zip(moved, r_sft, r_ppo)]
    out["metrics"] = {m: {n: round(float(verdicts[n][m].mean()), 3) for n in ("sft", "ppo")} for m in judge.METRICS}
    return out


def main(argv: list[str]) -> int:
    directory = Path(argv[0]) if argv and not argv[0].startswith("--") else checkpoints.CHECKPOINT_DIR
    out = case_moves(directory)
    text = json.dumps(out, indent=1)
    print(text)
    if "--json" in argv:
        Path(argv[argv.index("--json") + 1]).write_text(text + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
