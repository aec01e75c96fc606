"""SFT demonstrations, RL prompts and held-out evaluation prompts: their builders and loaders."""

from __future__ import annotations

from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from .knowledge import expert_response, rl_wordings
from .schema import EVAL_PROMPTS_FILE_SPEC, RL_PROMPTS_FILE_SPEC, SFT_FILE_SPEC, _load_jsonl, _path
from .text_helpers import _rng
from .vocabulary import DATASET_FILES, ESCALATION_SHARE, SFT_VARIANTS

SEED = 0  # the draw of which demonstrations escalate

# The 12 demonstrations the chapters show (the `question` demonstration of each scenario):
# every category, and the cases the course discusses by name.
FEATURED_SFT_SCENARIOS: tuple[str, ...] = (
    "REN-01",  # metformin with eGFR 38: renal dosing
    "INT-01",  # warfarin with ibuprofen: bleeding
    "INT-02",  # ramipril (ACE inhibitor) with spironolactone: hyperkalaemia
    "INT-03",  # grapefruit juice with simvastatin: CYP3A4
    "CON-01",  # metformin in liver cirrhosis: lactic acidosis
    "CON-02",  # ACE inhibitors in pregnancy: fetal risk
    "POP-01",  # oxybutynin in an older person: anticholinergic effects
    "POP-02",  # paediatric paracetamol dosing by weight
    "PGX-01",  # CYP2D6 poor metaboliser and codeine
    "ADE-01",  # blistering rash after allopurinol: Stevens-Johnson syndrome
    "ADE-02",  # muscle pain on a statin: myopathy
    "MON-04",  # INR target on warfarin
)


def build_sft(scenarios: Sequence[Mapping], featured: Sequence[str] = FEATURED_SFT_SCENARIOS) -> list[dict]:
    """One demonstration per SFT phrasing of each scenario (``sft_wordings``: ``question`` and the
    first ``SFT_VARIANTS`` variants). The ``question`` demonstration of each id in ``featured`` is
    featured. More phrasings of the same question teach a small model to recognise the case rather
    than one wording.

    The demonstrations are uneven, as real ones written by many people are: the response of the
    ``question`` demonstration and of half the others (drawn per case, seeded) is the full expert
    response, answer + escalation; the rest stop after the answer, without the escalation advice
    (``ESCALATION_SHARE``). SFT imitates both; the preference pairs, whose chosen answer always
    escalates, are what can teach the policy to escalate every time (chapters 3 and 5).
    """
    ids = {s["id"] for s in scenarios}
    missing = [i for i in featured if i not in ids]
    if missing:
        raise ValueError(f"featured scenario(s) not in the knowledge base: {', '.join(missing)}")
    out = []
    for s in sorted(scenarios, key=lambda s: s["id"]):
        phrasings = [("q", s["question"])] + [(f"v{i}", v) for i, v in enumerate(s["variants"][:SFT_VARIANTS])]
        escalates = _escalating_demonstrations(s["id"], len(phrasings))
        for k, (suffix, prompt) in enumerate(phrasings):
            out.append({
                "id": f"SFT-{s['id']}-{suffix}",
                "scenario_id": s["id"],
                "category": s["category"],
                "prompt": prompt,
                "response": expert_response(s) if k in escalates else s["answer"],
                "featured": suffix == "q" and s["id"] in featured,
            })
    return out


def _escalating_demonstrations(scenario_id: str, n: int) -> set[int]:
    """Which of a case's ``n`` demonstrations (0 = the ``question`` one) end with the escalation advice:
    0 and a seeded draw of the others, ``round(ESCALATION_SHARE * n)`` in all."""
    k = max(1, round(ESCALATION_SHARE * n))
    others = _rng(SEED, "sft-escalation", scenario_id).permutation(np.arange(1, n))
    return {0, *(int(i) for i in others[:k - 1])}


def build_rl_prompts(scenarios: Sequence[Mapping]) -> list[dict]:
    """The prompts reinforcement learning trains on (PPO, GRPO): ``rl_wordings`` of every scenario,
    wordings no other training set contains, never the held-out one."""
    return [
        {"id": f"RL-{s['id']}-r{k + 1}", "scenario_id": s["id"], "category": s["category"], "prompt": w}
        for s in sorted(scenarios, key=lambda s: s["id"]) for k, w in enumerate(rl_wordings(s))
    ]


def build_eval_prompts(scenarios: Sequence[Mapping]) -> list[dict]:
    """One held-out prompt per scenario: ``variants[-1]``, which no training file contains."""
    return [
        {"id": f"EVAL-{s['id']}", "scenario_id": s["id"], "category": s["category"], "prompt": s["variants"][-1]}
        for s in sorted(scenarios, key=lambda s: s["id"])
    ]


def load_sft(path: str | Path | None = None) -> list[dict]:
    """SFT demonstrations (default ``data/sft.jsonl``): ``{id, scenario_id, category, prompt, response, featured}``."""
    return _load_jsonl(_path(path, DATASET_FILES["sft"]), SFT_FILE_SPEC)


def load_rl_prompts(path: str | Path | None = None) -> list[dict]:
    """The RL prompts (default ``data/rl_prompts.jsonl``): ``{id, scenario_id, category, prompt}``,
    the two ``rl_questions`` of every case, in no other training set (``build_rl_prompts``)."""
    return _load_jsonl(_path(path, DATASET_FILES["rl_prompts"]), RL_PROMPTS_FILE_SPEC)


def load_eval_prompts(path: str | Path | None = None) -> list[dict]:
    """Held-out evaluation prompts (default ``data/eval_prompts.jsonl``): ``{id, scenario_id, category, prompt}``."""
    return _load_jsonl(_path(path, DATASET_FILES["eval_prompts"]), EVAL_PROMPTS_FILE_SPEC)


def load_eval_unseen(path: str | Path | None = None) -> list[dict]:
    """Evaluation prompts of the unseen cases (default ``data/eval_unseen.jsonl``)."""
    return _load_jsonl(_path(path, DATASET_FILES["eval_unseen"]), EVAL_PROMPTS_FILE_SPEC)
