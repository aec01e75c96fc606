"""Measure the reference checkpoints against the course's targets for each stage.

    .venv/bin/python benchmarks/eval_reference.py [CHECKPOINT_DIR] [--seeds 1 2] [--json OUT]
        [--set lr=3e-4 iterations=120] [--only-seeds] [--jsonl OUT]

``--set`` changes fields of ``ppo.DEFAULT_CONFIG`` for the ``--seeds`` runs; ``--only-seeds`` skips
everything but SFT's answers and those runs (to compare PPO settings); ``--jsonl OUT`` appends one
row per seed run to OUT, with the ``--set`` settings it ran with (``benchmarks/ppo_settings_results.jsonl``
holds the comparison the README reports).

On the 64 held-out questions (wordings never used in training), with the gold judge and 95%
bootstrap intervals over the questions:

* SFT: share of answers that address the case asked (the nearest expert answer by content-word
  overlap is the right case's), medical accuracy, repeated 4-grams;
* reward model: accuracy on the held-out preference pairs, and on *on-policy* pairs: two answers
  sampled (τ = 1) from the SFT and the PPO policy for each held-out question, kept when the gold
  judge's overall scores differ by at least ``DECISIVE`` (the RM must rank them as the judge does);
* PPO over SFT (greedy answers): the paired gold-judge gain with its interval (on the held-out
  questions, and on the RL prompts PPO trained on, wordings SFT never saw), the share of the
  questions where they differ on which the judge prefers PPO, medical accuracy and repetition of
  both, the reward model's mean score of PPO and of the expert answers, clip fraction and
  approximate KL from the reference run's log; with ``--seeds``, PPO is retrained from SFT with
  those seeds (the reference config otherwise) and each gain is reported;
* the *sampled* gain of PPO over SFT on the held-out questions: per question the mean gold score of
  ``SAMPLES`` answers sampled at τ = 1 (the distribution PPO optimises; a greedy answer that flips
  to another case moves a question's score by about 0.8, a shift in the sampled mix moves it by
  its size), PPO minus SFT, with the bootstrap interval over the questions;
* the unseen cases (``data/eval_unseen.jsonl``, whose cases appear only in the pretraining text):
  what SFT and PPO score there.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from course_utils import checkpoints, data, judge  # noqa: E402
from course_utils.ppo import DEFAULT_CONFIG, sample_answers, train_ppo  # noqa: E402
from course_utils.reward import evaluate_pairs, load_reward_model  # noqa: E402

sys.path.insert(0, str(ROOT / "benchmarks"))
from sweep_scale import _words, repeated_4grams  # noqa: E402  (the same measures as the sweep)

SAMPLES = 8          # sampled answers per question (τ = 1) for the sampled gain
DECISIVE = 0.1       # on-policy pairs count when the gold scores differ by at least this much
ROUNDS = 2000
MAX_NEW = 112


def ci(values, rounds: int = ROUNDS, seed: int = 0) -> tuple[float, float, float]:
    """(mean, lower, upper) with a 95% percentile bootstrap interval over the entries."""
    v = np.asarray(values, dtype=np.float64)
    v = v[~np.isnan(v)]
    idx = np.random.default_rng(seed).integers(0, len(v), size=(rounds, len(v)))
    lo, hi = np.quantile(v[idx].mean(axis=1), [0.025, 0.975])
    return round(float(v.mean()), 4), round(float(lo), 4), round(float(hi), 4)


def addresses_case(answers, items, experts) -> np.ndarray:
    expert_words = {sid: _words(t) for sid, t in experts.items()}
    out = []
    for a, e in zip(answers, items):
        aw = _words(a)
        best = max(expert_words, key=lambda sid: len(aw & expert_words[sid]) / max(1, len(aw | expert_words[sid])))
        out.append(best == e["scenario_id"])
    return np.asarray(out, dtype=float)


def stage_report(answers, items, scen, experts) -> tuple[dict, object]:
    v = judge.judge_many(answers, [scen[e["scenario_id"]] for e in items])
    return {"addresses_case": ci(addresses_case(answers, items, experts)),
            "medical_accuracy": ci(v.medical_accuracy), "overall": ci(v.overall),
            "repeated_4grams": ci([repeated_4grams(a) for a in answers])}, v


def gain(v_ppo, v_sft) -> dict:
    d = v_ppo.overall.to_numpy() - v_sft.overall.to_numpy()
    differ = np.abs(d) > 1e-9
    return {"gain": ci(d), "questions_differ": int(differ.sum()),
            "ppo_preferred_where_differ": round(float((d[differ] > 0).mean()), 4) if differ.any() else None}


def sampled_gold(model, tok, items, scen, k: int = SAMPLES, seed: int = 0) -> np.ndarray:
    """Per question, the mean gold score of ``k`` answers sampled at τ = 1 (the policy PPO optimises,
    not only its most likely answer); the same seed for every model."""
    prompts = [e["prompt"] for e in items] * k
    answers = sample_answers(model, tok, prompts, 1.0, MAX_NEW, seed=seed)
    v = judge.judge_many(answers, [scen[e["scenario_id"]] for e in items] * k)
    return v.overall.to_numpy().reshape(k, len(items)).mean(axis=0)


def greedy_verdicts(model, tok, items, scen):
    """``model``'s greedy answers to ``items`` and the gold judge's verdicts of them."""
    answers = sample_answers(model, tok, [e["prompt"] for e in items], 0.0, MAX_NEW)
    return answers, judge.judge_many(answers, [scen[e["scenario_id"]] for e in items])


def policy_gains(model, tok, items, rl_items, scen, v_sft, v_sft_rl, s_sft) -> tuple[dict, list[str]]:
    """What is measured for every retrained policy, paired with SFT's verdicts (``v_sft`` on ``items``,
    ``v_sft_rl`` on ``rl_items``) and sampled scores ``s_sft``: the greedy gain on the held-out
    questions and on the RL prompts, the sampled gain, medical accuracy and repeated 4-grams.
    Returns the measures and the greedy answers to ``items``."""
    answers, v = greedy_verdicts(model, tok, items, scen)
    return {**gain(v, v_sft), "rl_prompts_gain": gain(greedy_verdicts(model, tok, rl_items, scen)[1], v_sft_rl)["gain"],
            "sampled_gain": ci(sampled_gold(model, tok, items, scen) - s_sft),
            "medical_accuracy": ci(v.medical_accuracy),
            "repeated_4grams": ci([repeated_4grams(t) for t in answers])}, answers


def onpolicy_agreement(rm, tok, policies, items, scen, seed: int = 0) -> dict:
    prompts = [e["prompt"] for e in items]
    agree = []
    for k, model in enumerate(policies.values()):
        a = sample_answers(model, tok, prompts, 1.0, MAX_NEW, seed=seed + 2 * k)
        b = sample_answers(model, tok, prompts, 1.0, MAX_NEW, seed=seed + 2 * k + 1)
        ga = judge.judge_many(a, [scen[e["scenario_id"]] for e in items]).overall.to_numpy()
        gb = judge.judge_many(b, [scen[e["scenario_id"]] for e in items]).overall.to_numpy()
        ra, rb = rm.score(tok, prompts, a), rm.score(tok, prompts, b)
        keep = np.abs(ga - gb) >= DECISIVE
        agree += list(((ga > gb) == (ra > rb))[keep])
    return {"accuracy": ci(np.asarray(agree, float)) if agree else None, "pairs": len(agree)}


def report(out: dict, argv: list[str]) -> int:
    """Print the results; with ``--json OUT`` in ``argv``, also write them to OUT. Returns 0."""
    print(json.dumps(out, indent=1))
    if "--json" in argv:
        Path(argv[argv.index("--json") + 1]).write_text(json.dumps(out, indent=1) + "\n")
    return 0


def _values_after(argv: list[str], flag: str) -> list:
    """The arguments after ``flag`` up to the next ``--`` option (seeds as ints, the rest as text)."""
    if flag not in argv:
        return []
    out = []
    for a in argv[argv.index(flag) + 1:]:
        if a.startswith("--"):
            break
        out.append(int(a) if a.isdigit() else a)
    return out


def with_settings(config, settings: dict[str, str]):
    """``config`` (a dataclass) with the fields named in ``settings`` set from text, each converted to
    the type of the field's current value (the ``--set k=v`` of the benchmarks)."""
    return replace(config, **{k: type(getattr(config, k))(v) for k, v in settings.items()})


def ppo_prompts(sets: list[str]) -> list[dict]:
    """The prompts PPO trains on: ``rl`` (the RL prompts) and/or ``sft`` (the SFT wordings)."""
    out = []
    for name in sets:
        rows = data.load_rl_prompts() if name == "rl" else data.load_sft() if name == "sft" else None
        if rows is None:
            raise SystemExit(f"--ppo-prompts: unknown set {name!r} (rl, sft)")
        out += [{"prompt": r["prompt"], "scenario_id": r["scenario_id"]} for r in rows]
    return out


def main(argv: list[str]) -> int:
    directory = Path(argv[0]) if argv and not argv[0].startswith("--") else checkpoints.CHECKPOINT_DIR
    seeds = _values_after(argv, "--seeds")
    overrides = dict(kv.split("=", 1) for kv in _values_after(argv, "--set"))
    config = with_settings(DEFAULT_CONFIG, overrides)
    tok = checkpoints.load_tokenizer(directory)
    sft = checkpoints.load("sft", directory, dtype="float64")
    ppo = checkpoints.load("ppo", directory, dtype="float64")
    only_seeds = "--only-seeds" in argv
    rm = load_reward_model(directory)
    scen = {s["id"]: s for s in data.load_scenarios() + data.load_unseen_cases()}
    experts = {sid: data.expert_response(s) for sid, s in scen.items()}
    items = data.load_eval_prompts()
    prompts = [e["prompt"] for e in items]
    out: dict = {}
    answers = {n: sample_answers(m, tok, prompts, 0.0, MAX_NEW) for n, m in (("sft", sft), ("ppo", ppo))
               if n == "sft" or not only_seeds}
    out["sft"], v_sft = stage_report(answers["sft"], items, scen, experts)
    rl_items = data.load_rl_prompts()
    v_sft_rl = greedy_verdicts(sft, tok, rl_items, scen)[1]
    s_sft = sampled_gold(sft, tok, items, scen)
    out["sft_sampled"] = ci(s_sft)
    if not only_seeds:
        out["ppo"], v_ppo = stage_report(answers["ppo"], items, scen, experts)
        out["ppo_vs_sft"] = gain(v_ppo, v_sft)
        s_ppo = sampled_gold(ppo, tok, items, scen)
        out["ppo_vs_sft_sampled"] = {"ppo": ci(s_ppo), "gain": ci(s_ppo - s_sft)}
        out["ppo_vs_sft_rl_prompts"] = {"sft": ci(v_sft_rl.overall),
                                        **gain(greedy_verdicts(ppo, tok, rl_items, scen)[1], v_sft_rl)}
        test_pairs = [p for p in data.load_preferences() if p["split"] == "test"]
        out["reward_heldout_accuracy"] = round(float(evaluate_pairs(rm, tok, test_pairs)["accuracy"]), 4)
        out["reward_onpolicy"] = onpolicy_agreement(rm, tok, {"sft": sft, "ppo": ppo}, items, scen)
        out["rm_score"] = {"sft": ci(rm.score(tok, prompts, answers["sft"])),
                           "ppo": ci(rm.score(tok, prompts, answers["ppo"])),
                           "expert": ci(rm.score(tok, prompts, [experts[e["scenario_id"]] for e in items]))}
        log = checkpoints.load_log("ppo", directory)
        out["ppo_log"] = {"clipfrac_mean": round(float(log.clipfrac.mean()), 4),
                          "approx_kl_mean": round(float(log.approx_kl.mean()), 5),
                          "kl_final": round(float(log.kl.iloc[-1]), 3)}
        unseen = data.load_eval_unseen()
        up = [e["prompt"] for e in unseen]
        for name, model in (("sft", sft), ("ppo", ppo)):
            out[f"unseen_{name}"], _ = stage_report(sample_answers(model, tok, up, 0.0, MAX_NEW), unseen, scen, experts)
    prompt_sets = _values_after(argv, "--ppo-prompts") or ["rl"]
    train_prompts = ppo_prompts(prompt_sets)
    if prompt_sets != ["rl"]:
        overrides["ppo_prompts"] = "+".join(prompt_sets)
    for seed in seeds:
        t0 = time.perf_counter()
        policy, _ = train_ppo(checkpoints.load("sft", directory), checkpoints.load("sft", directory),
                              load_reward_model(directory), tok, train_prompts, replace(config, seed=seed),
                              progress=False)
        measures, _ = policy_gains(policy, tok, items, rl_items, scen, v_sft, v_sft_rl, s_sft)
        out[f"ppo_seed{seed}"] = {**measures, "seconds": round(time.perf_counter() - t0)}
        print(json.dumps({f"ppo_seed{seed}": out[f"ppo_seed{seed}"]}), flush=True)
        if "--jsonl" in argv:                     # one row per seed, with the settings it ran with
            with open(argv[argv.index("--jsonl") + 1], "a", encoding="utf-8") as f:
                f.write(json.dumps({"set": overrides, "seed": seed, **out[f"ppo_seed{seed}"]}) + "\n")
    return report(out, argv)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
