"""Preference pairs: the simulated annotators, the pairs of every scenario with their votes and
train/test split, the featured pairs, the "which case?" contrast pairs, and their statistics."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping, Sequence

import numpy as np

from .datasets import FEATURED_SFT_SCENARIOS
from .flaws import (_drop_key_fact, _escalates, _off_topic, _repetition, _short_answer, _vague, _verbose, _wrong_dose,
                    repetition_variants)
from .knowledge import expert_response, training_wordings
from .schema import PREFERENCES_FILE_SPEC, _load_jsonl, _path
from .text_helpers import _rng, _stable_int, split_sentences
from .vocabulary import CATEGORIES, DATASET_FILES, FLAWS


@dataclass(frozen=True)
class Annotator:
    """A simulated annotator.

    With probability ``p_unsure`` the annotator does not read closely and votes for the
    longer answer; otherwise it votes for the rejected answer with probability ``p_error``,
    or ``p_blind`` for flaws in ``blind_to`` (errors it does not recognise).
    """

    name: str
    description: str
    p_error: float
    p_unsure: float = 0.0
    blind_to: tuple[str, ...] = ()
    p_blind: float = 0.0

    def vote(self, rng: np.random.Generator, flaw: str, chosen: str, rejected: str) -> int:
        """1 if this annotator prefers ``chosen``. Always draws two numbers (stable streams)."""
        u_unsure, u_error = rng.random(2)
        if u_unsure < self.p_unsure:
            return int(len(chosen) >= len(rejected))
        p = self.p_blind if flaw in self.blind_to else self.p_error
        return int(u_error >= p)


ANNOTATORS: tuple[Annotator, ...] = (
    Annotator("expert", "careful pharmacist: errs 5% of the time, at random", p_error=0.05),
    Annotator(
        "hurried",
        "busy annotator: a quarter of the time picks the longer answer unread, else errs 10% "
        "(about 20% errors overall)",
        p_error=0.10,
        p_unsure=0.25,
    ),
    Annotator(
        "lay",
        "non-specialist: errs 10% in general but misses 40% of dose errors and unsafe claims",
        p_error=0.10,
        blind_to=("wrong_dose", "unsafe_claim"),
        p_blind=0.40,
    ),
)

# Share of (eligible) pairs whose chosen answer is the shorter correct version.
P_SHORT_CHOSEN = 0.5
PAIRS_PER_SCENARIO = 8          # one pair per flaw type, when the scenario allows it
TEST_FRACTION = 0.2
N_FEATURED_PAIRS = 20


def _test_scenarios(scenarios: Sequence[Mapping], seed: int) -> set[str]:
    """About TEST_FRACTION of the scenarios of every category (at least one), by a stable hash."""
    test: set[str] = set()
    for cat in CATEGORIES:
        ids = sorted((s["id"] for s in scenarios if s["category"] == cat),
                     key=lambda i: (_stable_int(seed, "split", i), i))
        if ids:
            test.update(ids[: max(1, round(TEST_FRACTION * len(ids)))])
    return test


@dataclass(frozen=True)
class _FlawMaterial:
    """What a case offers to build its flawed answers from (drawn once per case and seed)."""

    sentences: list[str]
    kept: list[str] | None                               # the answer with one key fact dropped
    dose: tuple[str, str, str, str] | None               # see flaws._wrong_dose
    off_topic: str | None                                # another case's expert response
    short: str | None                                    # the answer without its last sentence

    def available(self, s: Mapping) -> list[str]:
        """The flaws this case can show, in ``FLAWS`` order."""
        return [
            f for f in FLAWS
            if not (f in ("missing_key_fact", "verbose") and self.kept is None)
            and not (f == "wrong_dose" and self.dose is None)
            and not (f == "no_escalation" and _escalates(s["answer"]))
            and not (f == "off_topic" and self.off_topic is None)
        ]


def _flaw_material(s: Mapping, rng: np.random.Generator, others: Sequence[Mapping]) -> _FlawMaterial:
    sentences = split_sentences(s["answer"])
    kept = _drop_key_fact(s, rng)
    dose = _wrong_dose(s, rng)
    return _FlawMaterial(sentences, kept, dose, _off_topic(s, others, rng), _short_answer(s))


def _flawed_pair(s: Mapping, flaw: str, m: _FlawMaterial, rng: np.random.Generator) -> tuple[str, str]:
    """(chosen response, rejected response) of one pair showing ``flaw``: the chosen one is the expert
    response (its answer shortened by the last sentence half the time, when every key fact survives)."""
    use_short = m.short is not None and rng.random() < P_SHORT_CHOSEN
    chosen_answer = m.short if use_short else s["answer"]
    if flaw == "unsafe_claim":
        claim = s["unsafe_claims"][int(rng.integers(len(s["unsafe_claims"])))]["claim"]
        rejected = " ".join([claim, *m.sentences[1:], s["escalation"]])
    elif flaw == "missing_key_fact":
        rejected = " ".join([*m.kept, s["escalation"]])
    elif flaw == "wrong_dose":
        chosen_answer = m.dose[0]  # the two answers differ only in the dose
        rejected = m.dose[1]
    elif flaw == "no_escalation":
        rejected = s["answer"]
    elif flaw == "vague":
        rejected = _vague(s, rng)
    elif flaw == "off_topic":
        rejected = m.off_topic
    elif flaw == "repetition":
        rejected = _repetition(s, rng)
    else:  # verbose
        rejected = _verbose(m.kept, s, f"{chosen_answer} {s['escalation']}", rng)
    return f"{chosen_answer} {s['escalation']}", rejected


def _pair_record(pair_id: str, s: Mapping, split: str, prompt: str, flaw: str, chosen: str, rejected: str,
                 rng: np.random.Generator) -> dict:
    return {
        "id": pair_id, "scenario_id": s["id"], "category": s["category"], "split": split, "prompt": prompt,
        "chosen": chosen, "rejected": rejected, "flaw": flaw,
        "votes": [a.vote(rng, flaw, chosen, rejected) for a in ANNOTATORS], "featured": False,
    }


def _scenario_pairs(s: Mapping, seed: int, split: str, others: Sequence[Mapping] = ()) -> list[dict]:
    rng = _rng(seed, "preferences", s["id"])
    m = _flaw_material(s, rng, others)
    available = m.available(s)
    flaws = [available[i] for i in rng.permutation(len(available))[:PAIRS_PER_SCENARIO]]
    prompts = training_wordings(s)
    offset = int(rng.integers(len(prompts)))
    pairs = []
    for k, flaw in enumerate(flaws):
        chosen, rejected = _flawed_pair(s, flaw, m, rng)
        pairs.append(_pair_record(f"PREF-{s['id']}-{k + 1}", s, split, prompts[(offset + k) % len(prompts)],
                                  flaw, chosen, rejected, rng))
    return pairs


def _pick_featured(pairs: list[dict], preferred: Sequence[str], n: int, seed: int) -> None:
    """Mark ``n`` pairs featured: every category and as many flaw types as possible, drawn
    first from the ``preferred`` scenarios (the featured SFT cases), then from the rest."""
    preferred_set = set(preferred)
    ranked = sorted(
        (p for p in pairs if p["split"] == "train"),
        key=lambda p: (p["scenario_id"] not in preferred_set, _stable_int(seed, "featured", p["id"])),
    )
    picked: list[dict] = []

    def take(cond: Callable[[dict], bool]) -> bool:
        for p in ranked:
            if p not in picked and cond(p):
                picked.append(p)
                return True
        return False

    for cat in CATEGORIES:  # one per category, each a flaw not yet shown if possible
        shown = {p["flaw"] for p in picked}
        take(lambda p: p["category"] == cat and p["flaw"] not in shown) or take(lambda p: p["category"] == cat)
    for flaw in FLAWS:  # every flaw type
        if len(picked) < n and flaw not in {p["flaw"] for p in picked}:
            take(lambda p: p["flaw"] == flaw)
    while len(picked) < n:  # then balance: the categories, scenarios and flaws shown least so far
        counts: dict[str, dict[str, int]] = {"category": {}, "scenario_id": {}, "flaw": {}}
        for p in picked:
            for key, c in counts.items():
                c[p[key]] = c.get(p[key], 0) + 1
        rest = [p for p in ranked if p not in picked]
        if not rest:
            break
        picked.append(min(rest, key=lambda p: (
            counts["category"].get(p["category"], 0),
            counts["scenario_id"].get(p["scenario_id"], 0),
            counts["flaw"].get(p["flaw"], 0),
            ranked.index(p),
        )))
    for p in picked:
        p["featured"] = True


def build_preferences(
    scenarios: Sequence[Mapping],
    seed: int = 0,
    featured_scenarios: Sequence[str] = FEATURED_SFT_SCENARIOS,
) -> list[dict]:
    """About PAIRS_PER_SCENARIO preference pairs per scenario, with votes and a train/test split.

    Each scenario gets its own Generator (seeded by ``seed`` and its id), so its pairs do not
    change when other scenarios are added. Whole scenarios are held out as ``test``.
    """
    test = _test_scenarios(scenarios, seed)
    pairs = []
    for s in sorted(scenarios, key=lambda s: s["id"]):
        pairs.extend(_scenario_pairs(s, seed, "test" if s["id"] in test else "train", scenarios))
    _pick_featured(pairs, featured_scenarios, N_FEATURED_PAIRS, seed)
    return pairs


CONTRASTS_PER_WORDING = 4       # "which case?" pairs per training wording (case_contrast_pairs)


def case_contrast_pairs(scenarios: Sequence[Mapping], seed: int = 0,
                        per_wording: int = CONTRASTS_PER_WORDING) -> list[dict]:
    """"Which case is this?" pairs: for each training wording of each case of the ``train`` split,
    the case's expert response against ``per_wording`` expert responses of *other* train-split
    cases of the same category (flaw ``off_topic``, votes from the same ``ANNOTATORS``).

    The SFT model's commonest mistake on a new wording is a fluent, correct answer to another
    case (chapter 2). A reward model trained only on ``build_preferences`` sees that mistake in
    one pair per case and learns to spot flaws inside an answer, not whether the answer fits the
    question; these pairs teach the second (hard negatives, as in contrastive retrieval). The
    test-split cases appear neither as chosen nor as rejected answers, so the held-out pairs stay
    held out. Built on the fly (deterministic), not stored: the reference reward model and the
    noisy-label ablation of chapter 7 (``scorecard``) train on them.
    """
    test = _test_scenarios(scenarios, seed)
    train = sorted((s for s in scenarios if s["id"] not in test), key=lambda s: s["id"])
    pairs = []
    for s in train:
        rng = _rng(seed, "contrast", s["id"])
        pool = [o for o in train if o["category"] == s["category"] and o["id"] != s["id"]]
        chosen = expert_response(s)
        for w, prompt in enumerate(training_wordings(s)):
            for k in rng.permutation(len(pool))[:per_wording]:
                rejected = expert_response(pool[int(k)])
                pairs.append(_pair_record(f"CASE-{s['id']}-{w + 1}-{pool[int(k)]['id']}", s, "train", prompt,
                                          "off_topic", chosen, rejected, rng))
    return pairs


def escalation_contrast_pairs(scenarios: Sequence[Mapping], seed: int = 0) -> list[dict]:
    """"Does it escalate?" pairs: for each training wording of each case of the ``train`` split, the
    case's expert response (answer + escalation) against the same answer without the escalation
    advice (flaw ``no_escalation``, votes from the same ``ANNOTATORS``).

    Half the SFT demonstrations stop after the answer (``build_sft``), so the SFT model escalates only
    some of the time. ``build_preferences`` holds one such pair per case; these pairs say it for every
    training wording, so that the reward model learns what the demonstrations leave open. Test-split
    cases are left out, as in :func:`case_contrast_pairs`.
    """
    test = _test_scenarios(scenarios, seed)
    pairs = []
    for s in sorted((s for s in scenarios if s["id"] not in test), key=lambda s: s["id"]):
        rng = _rng(seed, "escalation-contrast", s["id"])
        chosen, rejected = expert_response(s), s["answer"]
        for w, prompt in enumerate(training_wordings(s)):
            pairs.append(_pair_record(f"ESC-{s['id']}-{w + 1}", s, "train", prompt, "no_escalation", chosen, rejected,
                                      rng))
    return pairs


FLAW_CONTRASTS_PER_WORDING = 1  # "what is wrong inside it?" pairs per training wording (flaw_contrast_pairs)
_INSIDE_FLAWS = tuple(f for f in FLAWS if f not in ("off_topic", "no_escalation"))


def flaw_contrast_pairs(scenarios: Sequence[Mapping], seed: int = 0,
                        per_wording: int = FLAW_CONTRASTS_PER_WORDING) -> list[dict]:
    """"What is wrong inside it?" pairs: for each training wording of each case of the ``train`` split,
    ``per_wording`` pairs of the expert response against a flawed version of it (an unsafe claim, a key
    fact missing, a dose changed tenfold, a vague non-answer, repetition, padding), built as in
    ``build_preferences``; the flaws take turns over the wordings, so every flaw a case allows is shown
    about equally often.

    ``build_preferences`` shows each flaw once per case, with one wording; these pairs show it with
    every wording, so the reward model learns the flaw and not the wording it came with. Test-split
    cases are left out, as in :func:`case_contrast_pairs`.
    """
    test = _test_scenarios(scenarios, seed)
    train = sorted((s for s in scenarios if s["id"] not in test), key=lambda s: s["id"])
    pairs = []
    for s in train:
        for w, prompt in enumerate(training_wordings(s)):
            rng = _rng(seed, "flaw-contrast", s["id"], w)
            m = _flaw_material(s, rng, train)
            inside = [f for f in m.available(s) if f in _INSIDE_FLAWS]
            for j in range(min(per_wording, len(inside))):
                flaw = inside[(w * per_wording + j) % len(inside)]
                chosen, rejected = _flawed_pair(s, flaw, m, rng)
                pairs.append(_pair_record(f"FLAW-{s['id']}-{w + 1}-{j + 1}", s, "train", prompt, flaw,
                                          chosen, rejected, rng))
    return pairs


def repetition_contrast_pairs(scenarios: Sequence[Mapping], seed: int = 0) -> list[dict]:
    """"Does it repeat itself?" pairs: for each training wording of each case of the ``train`` split, the
    repeated answer of ``flaws.repetition_variants`` against the *same words without the repeats*
    (flaw ``repetition``, votes from the same ``ANNOTATORS``).

    In every other repetition pair the chosen answer is the case's expert response, which the reward
    model sees hundreds of times for a training case: it can rank those pairs by recognising the
    expert text, and then has nothing to go on for a case it has never seen. Here the two answers say
    the same things and differ only in the repeats (a minimal pair), so the repeats are the only cue.
    Test-split cases are left out, as in :func:`case_contrast_pairs`.

    Not one of :data:`CONTRAST_KINDS`: measured with ``benchmarks/reward_pairs.py --kinds
    case,escalation,flaw,repetition``, they raise the held-out repetition pairs ranked right but lower
    the missing-key-fact and off-topic ones about as much (the plain answer of a sentence said three
    times is short, so the pairs also say "shorter is better"), and the held-out accuracy does not rise.
    """
    test = _test_scenarios(scenarios, seed)
    pairs = []
    for s in sorted((s for s in scenarios if s["id"] not in test), key=lambda s: s["id"]):
        rng = _rng(seed, "repetition-contrast", s["id"])
        for w, prompt in enumerate(training_wordings(s)):
            chosen, rejected = repetition_variants(s, rng)
            pairs.append(_pair_record(f"REP-{s['id']}-{w + 1}", s, "train", prompt, "repetition", chosen, rejected,
                                      rng))
    return pairs


#: The kinds of knowledge-base pairs, by the question each asks, with the function that builds them.
CONTRAST_KINDS: dict[str, Callable[..., list[dict]]] = {
    "which case?": case_contrast_pairs,
    "does it escalate?": escalation_contrast_pairs,
    "what is wrong inside it?": flaw_contrast_pairs,
}


def contrast_pairs(scenarios: Sequence[Mapping], seed: int = 0) -> list[dict]:
    """The pairs the reward model trains on besides ``build_preferences``' training split: every kind of
    :data:`CONTRAST_KINDS`, in that order (train-split cases only)."""
    return [p for build in CONTRAST_KINDS.values() for p in build(scenarios, seed)]


def preference_stats(pairs: Sequence[Mapping]) -> dict[str, float]:
    """Shares over pairs: split vote, majority for the rejected answer, chosen longer than rejected."""
    n = len(pairs)
    split = sum(0 < sum(p["votes"]) < len(p["votes"]) for p in pairs)
    wrong_majority = sum(2 * sum(p["votes"]) < len(p["votes"]) for p in pairs)
    longer = sum(len(p["chosen"]) > len(p["rejected"]) for p in pairs)
    agree = np.array([p["votes"] for p in pairs], dtype=float).mean(axis=0) if n else np.zeros(0)
    stats = {
        "pairs": float(n),
        "split_vote_share": split / n if n else 0.0,
        "majority_rejected_share": wrong_majority / n if n else 0.0,
        "chosen_longer_share": longer / n if n else 0.0,
        "test_share": sum(p["split"] == "test" for p in pairs) / n if n else 0.0,
    }
    for a, acc in zip(ANNOTATORS, agree):
        stats[f"accuracy_{a.name}"] = float(acc)
    return stats


def load_preferences(path: str | Path | None = None) -> list[dict]:
    """Preference pairs (default ``data/preferences.jsonl``):
    ``{id, scenario_id, category, split, prompt, chosen, rejected, flaw, votes, featured}``."""
    return _load_jsonl(_path(path, DATASET_FILES["preferences"]), PREFERENCES_FILE_SPEC)
