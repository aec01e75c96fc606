"""Weight-averaged PPO policies ("soups"): does averaging runs of several seeds keep PPO's gain and drop its noise?

    .venv/bin/python benchmarks/ppo_soup.py [--soups 0,1,2,3 4,5,6,7 0,1,2,3,4,5,6,7] [--json OUT]

Trains PPO from the committed SFT model against the committed reward model once per seed named in
``--soups`` (the reference recipe, ``ppo.DEFAULT_CONFIG`` with that seed; two seeds at a time on
two cores, one BLAS thread each), then averages the weights of the runs of each soup, θ̄ = (1/K) Σ_k θ_k
(all runs start from the same SFT weights, so their average is itself a policy: Wortsman et al.
2022, "Model soups"; Ramé et al. 2024, "WARP: on the benefits of weight averaged rewarded
policies"), and measures every single run and every soup as ``eval_reference.py`` measures a
seed: the greedy gold gain over SFT on the 64 held-out questions and on the RL prompts, the
sampled gain, medical accuracy, the share of answers to the case asked and repeated 4-grams.

The idea: each run gains on the questions where PPO's gain is shared (the escalation advice) and
moves a few answers to another case, different ones for each seed; averaging should keep what the
runs share and drop what each run does alone. Writes ``benchmarks/ppo_soup.json``; about 12 minutes
on two cores for eight seeds.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import multiprocessing
import os
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from course_utils import checkpoints, data  # noqa: E402
from course_utils.model import TinyGPT  # noqa: E402
from course_utils.ppo import DEFAULT_CONFIG, train_ppo  # noqa: E402
from course_utils.reward import load_reward_model  # noqa: E402
from eval_reference import addresses_case, ci, greedy_verdicts, policy_gains, sampled_gold  # noqa: E402

DEFAULT_OUT = ROOT / "benchmarks" / "ppo_soup.json"


def train_seed(seed: int) -> dict[str, np.ndarray]:
    """The weights of one reference PPO run (``DEFAULT_CONFIG`` with ``seed``), trained from the committed SFT."""
    tok = checkpoints.load_tokenizer()
    policy, _ = train_ppo(checkpoints.load("sft"), checkpoints.load("sft"), load_reward_model(), tok,
                          data.load_rl_prompts(), replace(DEFAULT_CONFIG, seed=seed), progress=False)
    return policy.params


def soup(runs: list[dict[str, np.ndarray]]) -> TinyGPT:
    """θ̄ = (1/K) Σ_k θ_k, in float64, as a TinyGPT (the SFT model's architecture)."""
    model = checkpoints.load("sft", dtype="float64")
    model.load_state_dict({k: np.mean([r[k].astype(np.float64) for r in runs], axis=0) for k in model.params})
    return model


class Judge:
    """SFT's answers, judged once; then :meth:`measure` for any policy, paired with them."""

    def __init__(self) -> None:
        self.tok = checkpoints.load_tokenizer()
        self.scen = {s["id"]: s for s in data.load_scenarios()}
        self.experts = {sid: data.expert_response(s) for sid, s in self.scen.items()}
        self.items, self.rl = data.load_eval_prompts(), data.load_rl_prompts()
        sft = checkpoints.load("sft", dtype="float64")
        self.v_sft = greedy_verdicts(sft, self.tok, self.items, self.scen)[1]
        self.v_sft_rl = greedy_verdicts(sft, self.tok, self.rl, self.scen)[1]
        self.s_sft = sampled_gold(sft, self.tok, self.items, self.scen)

    def measure(self, model: TinyGPT) -> dict:
        """``eval_reference.policy_gains``, and the share of greedy answers to the case asked."""
        out, answers = policy_gains(model, self.tok, self.items, self.rl, self.scen, self.v_sft, self.v_sft_rl,
                                    self.s_sft)
        return {**out, "addresses_case": ci(addresses_case(answers, self.items, self.experts))}


def train_all(seeds: list[int]) -> dict[int, dict[str, np.ndarray]]:
    """Every seed's run; two at a time in forked processes where there are two cores (Linux)."""
    if (os.cpu_count() or 1) >= 2 and sys.platform.startswith("linux"):
        ctx = multiprocessing.get_context("fork")
        with concurrent.futures.ProcessPoolExecutor(max_workers=2, mp_context=ctx) as pool:
            return dict(zip(seeds, pool.map(train_seed, seeds)))
    return {s: train_seed(s) for s in seeds}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--soups", nargs="+", default=["0,1,2,3", "4,5,6,7", "0,1,2,3,4,5,6,7"],
                        help="comma-separated seeds, one soup each")
    parser.add_argument("--json", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    soups = [[int(s) for s in spec.split(",")] for spec in args.soups]
    seeds = sorted({s for group in soups for s in group})
    runs = train_all(seeds)
    j = Judge()
    out: dict = {"config": {k: v for k, v in vars(DEFAULT_CONFIG).items() if k in ("iterations", "lr", "kl_coef")},
                 "sft_sampled": ci(j.s_sft)}
    for s in seeds:
        model = soup([runs[s]])
        out[f"seed{s}"] = j.measure(model)
        print(json.dumps({f"seed{s}": out[f"seed{s}"]}), flush=True)
    for group in soups:
        name = "soup" + "+".join(map(str, group))
        out[name] = j.measure(soup([runs[s] for s in group]))
        print(json.dumps({name: out[name]}), flush=True)
    args.json.write_text(json.dumps(out, indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
