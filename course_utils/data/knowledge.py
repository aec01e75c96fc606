"""The knowledge base: loading the scenarios and the unseen cases, the expert response, which
wordings of a case each stage may train on, and the content checks (``lint_scenarios``)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Mapping, Sequence

from .schema import SCENARIOS_FILE_SPEC, _load_jsonl, _path
from .text_helpers import _contains_phrase, _dose_regex, _lower_first, _states, split_sentences
from .vocabulary import SCENARIOS_FILE, SFT_VARIANTS, UNSEEN_FILE


def load_scenarios(path: str | Path | None = None) -> list[dict]:
    """The knowledge base (default ``data/scenarios.jsonl``), every record validated, in file order."""
    return _load_jsonl(_path(path, SCENARIOS_FILE), SCENARIOS_FILE_SPEC)


def load_unseen_cases(path: str | Path | None = None) -> list[dict]:
    """The unseen cases (default ``data/unseen_cases.jsonl``): same schema as the knowledge base;
    their knowledge is in the pretraining corpus, their questions in no training file."""
    return _load_jsonl(_path(path, UNSEEN_FILE), SCENARIOS_FILE_SPEC)


def expert_response(s: Mapping) -> str:
    """The expert pharmacist's full response: answer followed by the escalation advice."""
    return f"{s['answer']} {s['escalation']}"


def training_wordings(s: Mapping) -> list[str]:
    """The wordings of a case's question that training data may use: ``question`` and every
    variant but the last (held out for evaluation)."""
    return [s["question"], *s["variants"][:-1]]


def sft_wordings(s: Mapping) -> list[str]:
    """The wordings the SFT demonstrations use: ``question`` and the first ``SFT_VARIANTS`` variants."""
    return [s["question"], *s["variants"][:SFT_VARIANTS]]


def rl_wordings(s: Mapping) -> list[str]:
    """The wordings RL trains on: ``rl_questions``, which no SFT demonstration, preference pair or
    corpus passage contains (and never the held-out last variant)."""
    return list(s["rl_questions"])


# Drug-name endings (INN stems) and drug classes, to find the drug a title is about.
_DRUG_WORD = re.compile(
    r"[a-z][a-z-]{3,}(?:ol|ine|in|ide|ate|pril|sartan|mab|azole|mycin|cillin|one|ium|vir|il|el|en|am|an|im|ac|ib|ax)"
)
_NOT_DRUGS = {
    "children", "between", "women", "oxygen", "level", "levels", "potassium", "sodium", "calcium",
    "magnesium", "creatinine", "protein", "urine", "medicine", "medicines", "routine", "within",
    "certain", "given", "taken", "often", "program", "toxicity", "woman", "breastfeeding", "vitamin",
    "examine", "determine", "machine", "against", "plasma", "kitchen", "haemoglobin", "bilirubin",
    "swollen", "sudden", "broken", "seven", "eleven", "hidden", "garden", "golden", "ribbon",
}
_DRUG_CLASSES = (
    "ACE inhibitor", "angiotensin receptor blocker", "statin", "NSAID", "SSRI", "opioid", "DOAC",
    "anticoagulant", "antibiotic", "antipsychotic", "antiepileptic", "benzodiazepine", "diuretic",
    "beta-blocker", "beta blocker", "sulfonylurea", "anticholinergic", "antihistamine", "laxative",
    "triptan", "vaccine", "St John's wort",
)


def _main_drug(s: Mapping) -> str:
    """The drug a scenario is about, for templates: the first drug-like word or drug class in
    the title ("Blistering rash after starting allopurinol" -> "allopurinol"), else the first
    dose fact's drug, else "this medicine"."""
    title = s["title"]
    lowered = title.lower()
    found: list[tuple[int, int, str]] = []
    for m in re.finditer(r"[A-Za-z][A-Za-z-]*", title):
        word = m.group(0)
        if word.lower() not in _NOT_DRUGS and _DRUG_WORD.fullmatch(word.lower()) and not word.isupper():
            found.append((m.start(), 1, _lower_first(word)))
    for cls in _DRUG_CLASSES:  # a class is named in the plural ("ACE inhibitors", "statins")
        m = re.search(r"\b" + re.escape(cls.lower()) + r"s?\b", lowered)
        if m:
            found.append((m.start(), 0, cls if cls.endswith("wort") else cls + "s"))
    if found:  # the first in the title; a class before a word at the same place
        return min(found)[2]
    if s["dose_facts"]:
        return _lower_first(s["dose_facts"][0]["drug"])
    return "this medicine"


def lint_scenarios(scenarios: Sequence[Mapping]) -> list[str]:
    """Content checks the datasets and the rubric judge rely on (schema checks are in the loader).

    - the expert response states every key fact (one of its ``accept`` phrases occurs);
    - every unsafe claim is detected by one of its own ``patterns``;
    - no training text of the scenario (answer, escalation, notes, dose statements) triggers
      an unsafe-claim pattern;
    - every dose statement contains its dose as a whole value;
    - the answer has 2-4 sentences.

    Returns one line per finding, ``ID field: problem``; an empty list means clean.
    """
    findings = []
    for s in sorted(scenarios, key=lambda s: s["id"]):
        sid, expert = s["id"], expert_response(s)
        for i, kf in enumerate(s["key_facts"]):
            if not _states(expert, kf):
                findings.append(f"{sid} key_facts[{i}]: the expert response states none of {kf['accept']}")
        for i, uc in enumerate(s["unsafe_claims"]):
            if not any(_contains_phrase(uc["claim"], p) for p in uc["patterns"]):
                findings.append(f"{sid} unsafe_claims[{i}]: no pattern matches the claim itself")
        training = {"answer": s["answer"], "escalation": s["escalation"]}
        training.update({f"notes[{i}]": n for i, n in enumerate(s["notes"])})
        training.update({f"dose_facts[{i}].statement": d["statement"] for i, d in enumerate(s["dose_facts"])})
        for name, value in training.items():
            hits = [p for uc in s["unsafe_claims"] for p in uc["patterns"] if _contains_phrase(value, p)]
            if hits:
                findings.append(f"{sid} {name}: contains unsafe-claim pattern(s) {hits}")
        for i, d in enumerate(s["dose_facts"]):
            if not _dose_regex(d["dose"]).search(d["statement"]):
                findings.append(f"{sid} dose_facts[{i}]: the statement does not contain the dose {d['dose']!r}")
        n = len(split_sentences(s["answer"]))
        if not 2 <= n <= 4:
            findings.append(f"{sid} answer: {n} sentence(s), the schema asks for 2-4")
    return findings
