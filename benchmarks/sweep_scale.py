"""Choosing the scale of the reference models by measurement: size, training length, SFT epochs.

    .venv/bin/python benchmarks/sweep_scale.py NAME [NAME ...]      # one or more configurations below
    .venv/bin/python benchmarks/sweep_scale.py --list

For each configuration: pretrain from scratch on the corpus (training split), fine-tune on the SFT
demonstrations, answer the 64 held-out questions greedily, and print one JSON line with

* ``params``, ``seconds`` (pretraining + SFT, one BLAS thread; SFT only when an earlier
  configuration of the same shape and length left its pretrained model in
  ``benchmarks/results/``) and the validation loss;
* ``heldout_answer_loss``: nats per token of the expert answers to the held-out wordings;
* ``addresses_case``: share of answers whose nearest expert answer (content-word overlap,
  Jaccard) is the right case's, the issue of "answering a different case";
* ``exact``: share of answers equal to the right case's expert answer;
* the gold judge's ``overall`` and ``medical_accuracy`` means, and ``repeated_4grams``.

One BLAS thread per run, so two runs can share a 2-core machine; results go to stdout (and
``benchmarks/results/`` when ``--save`` is given, ignored by git).
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from course_utils import checkpoints, data, judge  # noqa: E402
from course_utils.ppo import sample_answers  # noqa: E402
from course_utils.training import (PretrainConfig, SFTConfig, corpus_stream, window_loss, new_model,  # noqa: E402
                                   pretrain, response_loss, sft)

CONFIGS: dict[str, dict] = {
    "d64-l2-short": dict(d_model=64, n_layers=2, steps=400, epochs=10),
    "d64-l2": dict(d_model=64, n_layers=2, steps=2000, epochs=20),
    "d96-l3": dict(d_model=96, n_layers=3, steps=2000, epochs=20),
    "d128-l4": dict(d_model=128, n_layers=4, steps=2000, epochs=20),
    "d128-l4-long": dict(d_model=128, n_layers=4, steps=3000, epochs=30),
    "d128-l4-wd": dict(d_model=128, n_layers=4, steps=2000, epochs=20, weight_decay=0.1),
    "d96-l3-e40": dict(d_model=96, n_layers=3, steps=2000, epochs=40),
    "d64-l2-pd2": dict(d_model=64, n_layers=2, steps=2000, epochs=20, prompt_dropout=0.2),
    "d96-l3-pd2": dict(d_model=96, n_layers=3, steps=2000, epochs=20, prompt_dropout=0.2),
    "d96-l3-pd3-e40": dict(d_model=96, n_layers=3, steps=2000, epochs=40, prompt_dropout=0.3),
    "d128-l4-pd2": dict(d_model=128, n_layers=4, steps=2000, epochs=20, prompt_dropout=0.2),
    "d128-l4-pd3-e40": dict(d_model=128, n_layers=4, steps=3000, epochs=40, prompt_dropout=0.3),
}


def _words(text: str) -> set[str]:
    return {w for w in judge.normalize(text).split() if len(w) > 3}


def repeated_4grams(text: str) -> float:
    w = text.split()
    grams = [tuple(w[i:i + 4]) for i in range(len(w) - 3)]
    return 1.0 - len(set(grams)) / len(grams) if grams else 0.0


def evaluate(model, tok, eval_prompts, scenarios) -> dict:
    experts = {sid: data.expert_response(s) for sid, s in scenarios.items()}
    expert_words = {sid: _words(t) for sid, t in experts.items()}
    answers = sample_answers(model, tok, [e["prompt"] for e in eval_prompts], 0.0, 112)
    nearest, exact = [], []
    for e, a in zip(eval_prompts, answers):
        aw = _words(a)
        best = max(expert_words, key=lambda sid: len(aw & expert_words[sid]) / max(1, len(aw | expert_words[sid])))
        nearest.append(best == e["scenario_id"])
        exact.append(a.strip() == experts[e["scenario_id"]].strip())
    verdicts = judge.judge_many(answers, [scenarios[e["scenario_id"]] for e in eval_prompts])
    held = [{"prompt": e["prompt"], "response": experts[e["scenario_id"]]} for e in eval_prompts]
    return {"addresses_case": float(np.mean(nearest)), "exact": float(np.mean(exact)),
            "overall": float(verdicts.overall.mean()), "medical_accuracy": float(verdicts.medical_accuracy.mean()),
            "repeated_4grams": float(np.mean([repeated_4grams(a) for a in answers])),
            "heldout_answer_loss": response_loss(model, tok, held), "example": answers[0]}


def run(name: str) -> dict:
    c = CONFIGS[name]
    tok = checkpoints.build_tokenizer()
    train_text, val_text = data.split_corpus(data.load_corpus())
    train, val = corpus_stream(tok, train_text), corpus_stream(tok, val_text)
    model = new_model(tok, seed=0, d_model=c["d_model"], n_layers=c["n_layers"])
    t0 = time.perf_counter()
    cached = ROOT / "benchmarks" / "results" / f"base-d{c['d_model']}-l{c['n_layers']}-s{c['steps']}.npz"
    with threadpool_limits(1):
        pcfg = replace(PretrainConfig(), steps=c["steps"], warmup=max(40, c["steps"] // 20), eval_every=c["steps"])
        if cached.exists():                       # the same pretraining as an earlier configuration
            model = type(model).load(cached)
            val_loss = window_loss(model, val, pcfg.seq_len, n_batches=pcfg.eval_batches)
        else:
            hist = pretrain(model, train, val, pcfg, progress=False)
            val_loss = float(hist.log.val_loss.dropna().iloc[-1])
            cached.parent.mkdir(parents=True, exist_ok=True)
            model.save(cached)
        scfg = replace(SFTConfig(), epochs=c["epochs"], weight_decay=c.get("weight_decay", 0.0),
                       prompt_dropout=c.get("prompt_dropout", 0.0))
        sft(model, tok, data.load_sft(), scfg, progress=False)
        seconds = time.perf_counter() - t0
        scenarios = {s["id"]: s for s in data.load_scenarios()}
        out = evaluate(model, tok, data.load_eval_prompts(), scenarios)
    out.update(name=name, params=model.n_params, seconds=round(seconds, 1),
               val_loss=val_loss, **c)
    if SAVE_MODELS:
        SAVE_MODELS.mkdir(parents=True, exist_ok=True)
        model.save(SAVE_MODELS / f"{name}.npz")
    return out


SAVE_MODELS: Path | None = None


def main(argv: list[str]) -> int:
    if not argv or argv[0] == "--list":
        print("\n".join(f"{k}: {v}" for k, v in CONFIGS.items()))
        return 0
    global SAVE_MODELS
    save = "--save" in argv
    if "--models" in argv:
        SAVE_MODELS = Path(argv[argv.index("--models") + 1])
        argv = [a for i, a in enumerate(argv) if a != "--models" and (i == 0 or argv[i - 1] != "--models")]
    for name in [a for a in argv if not a.startswith("--")]:
        result = run(name)
        line = json.dumps({k: (round(v, 4) if isinstance(v, float) else v) for k, v in result.items()})
        print(line, flush=True)
        if save:
            out = ROOT / "benchmarks" / "results"
            out.mkdir(parents=True, exist_ok=True)
            with open(out / "sweep_scale.jsonl", "a", encoding="utf-8") as f:
                f.write(line + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
