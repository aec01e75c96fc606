"""Which knowledge-base pairs the reward model needs: held-out pair accuracy per flaw, with and without them.

    .venv/bin/python benchmarks/reward_pairs.py [--kinds case,escalation,flaw,repetition] [--seed 0] [--jsonl OUT]
        [--set lr=0.002 weight_decay=0.1 label_smoothing=0.1] [--flaw-per-wording 2]

Trains a reward model exactly as ``reward.build_reward_checkpoint`` does (the committed ``sft.npz``,
``reward.DEFAULT_CONFIG`` with the given ``seed`` for the order of the pairs) on the training split of
``data.load_preferences()`` plus the chosen kinds of ``data.contrast_pairs``:

* ``case``: "which case is this?" (``data.case_contrast_pairs``);
* ``escalation``: "does it escalate?" (``data.escalation_contrast_pairs``);
* ``flaw``: "what is wrong inside it?" (``data.flaw_contrast_pairs``);
* ``repetition``: "does it repeat itself?" (``data.repetition_contrast_pairs``; not one of the
  reference's kinds: the rows with it say why).

Prints and appends one JSON row: the kinds, the seed, the reward head, the number of training pairs,
the seconds, the accuracy on the 105 held-out pairs (their dataset labels; 95% Wilson interval) and
the pairs ranked right per flaw, and the ``--set`` settings when there are any (fields of
``reward.RewardConfig``, or ``label_smoothing``; the reference's settings otherwise), and
``flaw_per_wording`` when it is not the reference's ``data.FLAW_CONTRASTS_PER_WORDING`` (how many
"what is wrong inside it?" pairs each training wording gets). Run once per row; each takes about
4 minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from course_utils import checkpoints, data, reward  # noqa: E402
from course_utils.model import TinyGPT  # noqa: E402
from eval_reference import with_settings  # noqa: E402  (the same --set parsing as the PPO benchmark)

DEFAULT_OUT = ROOT / "benchmarks" / "reward_pairs_results.jsonl"
# What the reward head reads (reward.RewardModel): the last token's state and the answer's mean state.
# Rows without "last+mean" are from the earlier head on the last token only ("last").
HEAD = "last+mean"
# command-line name -> the function that builds the pairs: the reference's kinds, then a benchmark-only one
KINDS = dict(zip(("case", "escalation", "flaw"), data.CONTRAST_KINDS.values())) | {
    "repetition": data.repetition_contrast_pairs}


def run(kinds: list[str], seed: int, settings: dict[str, str] | None = None,
        flaw_per_wording: int = data.FLAW_CONTRASTS_PER_WORDING) -> dict:
    """Train one reward model on the preference pairs + the ``kinds`` of knowledge-base pairs; score it.

    ``settings`` change fields of ``reward.DEFAULT_CONFIG`` (text values, converted to the field's
    type); ``label_smoothing`` is passed to ``reward.train_reward_model``. ``flaw_per_wording`` is the
    ``per_wording`` of ``data.flaw_contrast_pairs`` (the ``flaw`` kind)."""
    settings = dict(settings or {})
    smoothing = float(settings.pop("label_smoothing", 0.0))
    tok = checkpoints.load_tokenizer()
    kb = data.load_scenarios()
    prefs = data.load_preferences()
    train = [p for p in prefs if p["split"] == "train"]
    for kind in kinds:
        train += KINDS[kind](kb, per_wording=flaw_per_wording) if kind == "flaw" else KINDS[kind](kb)
    test = [p for p in prefs if p["split"] == "test"]
    cfg = replace(with_settings(reward.DEFAULT_CONFIG, settings), seed=seed)
    rm = reward.RewardModel(TinyGPT.load(checkpoints.CHECKPOINT_DIR / "sft.npz"), seed=cfg.seed)
    t0 = time.perf_counter()
    reward.train_reward_model(rm, tok, train, cfg, progress=False, label_smoothing=smoothing)
    seconds = round(time.perf_counter() - t0)
    ev = reward.evaluate_pairs(rm, tok, test)
    rc, rr = reward.pair_rewards(rm, tok, test)
    by_flaw: dict[str, list[int]] = {}
    for p, c, r in zip(test, rc, rr):
        right_total = by_flaw.setdefault(p["flaw"], [0, 0])
        right_total[0] += int(c > r)
        right_total[1] += 1
    return {"kinds": kinds, "seed": seed, "head": HEAD, "train_pairs": len(train), "seconds": seconds,
            "heldout_accuracy": round(ev["accuracy"], 4), "ci": [round(ev["ci_low"], 4), round(ev["ci_high"], 4)],
            "right_per_flaw": dict(sorted(by_flaw.items()))}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kinds", default="case,escalation,flaw", help="comma-separated: " + ", ".join(KINDS))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--jsonl", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--set", nargs="*", default=[], metavar="FIELD=VALUE",
                        help="reward.RewardConfig fields (e.g. lr=0.002) or label_smoothing=0.1")
    parser.add_argument("--flaw-per-wording", type=int, default=data.FLAW_CONTRASTS_PER_WORDING,
                        help="'what is wrong inside it?' pairs per training wording (data.flaw_contrast_pairs)")
    args = parser.parse_args(argv)
    kinds = [k for k in args.kinds.split(",") if k]
    unknown = sorted(set(kinds) - set(KINDS))
    if unknown:
        parser.error(f"unknown kinds {unknown}; choose from {sorted(KINDS)}")
    settings = dict(kv.split("=", 1) for kv in args.set)
    row = run(kinds, args.seed, settings, args.flaw_per_wording) | ({"set": settings} if settings else {})
    if args.flaw_per_wording != data.FLAW_CONTRASTS_PER_WORDING:
        row["flaw_per_wording"] = args.flaw_per_wording
    print(json.dumps(row))
    with open(args.jsonl, "a", encoding="utf-8") as f:
        f.write(json.dumps(row) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
