"""The vocabulary of the knowledge base: categories, flaw types, splits and the dataset file names."""

from __future__ import annotations

CATEGORIES: tuple[str, ...] = (
    "renal_dosing",
    "drug_interactions",
    "contraindications",
    "special_populations",
    "pharmacogenomics",
    "adverse_events",
    "monitoring",
)

CATEGORY_LABELS: dict[str, str] = {
    "renal_dosing": "Renal dosing",
    "drug_interactions": "Drug interactions",
    "contraindications": "Contraindications",
    "special_populations": "Special populations",
    "pharmacogenomics": "Pharmacogenomics",
    "adverse_events": "Adverse events",
    "monitoring": "Monitoring",
}

FLAWS: tuple[str, ...] = (
    "unsafe_claim",
    "missing_key_fact",
    "wrong_dose",
    "no_escalation",
    "vague",
    "verbose",
    "off_topic",
    "repetition",
)

SPLITS: tuple[str, ...] = ("train", "test")

DATASET_FILES: dict[str, str] = {
    "corpus": "corpus.txt",
    "sft": "sft.jsonl",
    "rl_prompts": "rl_prompts.jsonl",
    "preferences": "preferences.jsonl",
    "eval_prompts": "eval_prompts.jsonl",
    "eval_unseen": "eval_unseen.jsonl",
}
SCENARIOS_FILE = "scenarios.jsonl"
# Wordings per case: ``question`` and variants[:SFT_VARIANTS] (every variant but the last) for SFT
# and the preference pairs, the last variant held out for evaluation, and ``rl_questions``, two more
# wordings that only reinforcement learning uses (PPO, GRPO). RL needs prompts the SFT model has not
# memorised: on its own training wordings it gives the same answer every time (benchmarks/rl_headroom.py),
# so every sample gets the same reward and there is nothing to learn from.
SFT_VARIANTS = 23
# The share of a case's SFT demonstrations whose response ends with the escalation advice (the rest stop
# after the answer, as uneven real demonstrations do); ``datasets.build_sft`` draws which, seeded.
ESCALATION_SHARE = 0.5
# Whole cases kept out of SFT, preference and RL data: does a model answer what it only read about?
UNSEEN_FILE = "unseen_cases.jsonl"

ID_PATTERN = r"[A-Z]{2,5}-\d{2,3}"
