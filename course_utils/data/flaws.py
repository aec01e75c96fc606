"""The answers of a preference pair: how a rejected answer is made worse, one maker per flaw of
``FLAWS`` (see the package docstring), each drawing from the scenario's own Generator, and the
shorter correct version a chosen answer may use."""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

from course_utils.judge.claims import claims

from .knowledge import _main_drug
from .text_helpers import _contains_phrase, _dose_regex, _sentence, _states, _tenfold, _upper_first, split_sentences

# A vague answer: one opening that names the drug, one to six hedges, sometimes a closing.
_VAGUE_OPENINGS = (
    "It is hard to give a clear answer about {drug}, because every patient is different.",
    "There are a lot of things to think about when it comes to {drug}.",
    "People respond to {drug} in different ways.",
    "Questions about {drug} come up often, and the answer varies from person to person.",
    "Whether {drug} is a good idea is not a simple question.",
)
_VAGUE_HEDGES = (
    "It may be fine for some people and less suitable for others.",
    "Some people have problems and some do not.",
    "It depends on many factors, and your situation is unique.",
    "All medicines have good and bad points.",
    "There is no simple rule that fits everyone.",
    "It might be worth thinking about, but it is difficult to say more in general terms.",
    "Everyone's body handles medicines in its own way.",
    "What suits one person may not suit another.",
    "It is hard to be specific without knowing more.",
    "Different sources say different things about this.",
)
_VAGUE_CLOSINGS = (
    "So it may or may not be a concern for you.",
    "Hopefully that gives you something to think about.",
    "In the end it is a matter of weighing things up.",
)

_FILLER = (
    "Medicines should be stored in a cool, dry place out of the sight and reach of children.",
    "Many people take more than one medicine every day.",
    "Tablets are usually swallowed whole with a glass of water.",
    "Medicine packs carry a batch number and an expiry date.",
    "Generic medicines contain the same active ingredient as the branded versions.",
    "Some medicines come in several strengths and formulations.",
    "The leaflet inside the pack lists all the ingredients of the product.",
    "New medicines go through several phases of clinical trials before approval.",
    "Liquid medicines are often supplied with a measuring spoon or an oral syringe.",
    "Keeping a written list of your medicines can make appointments easier.",
)


def _key_fact_sentences(answer_sentences: list[str], key_fact: Mapping) -> list[int]:
    return [i for i, sent in enumerate(answer_sentences) if _states(sent, key_fact)]


def _drop_key_fact(s: Mapping, rng: np.random.Generator) -> list[str] | None:
    """The answer's sentences without those carrying one key fact (chosen at random among the
    key facts whose removal leaves some answer and loses the fact, escalation included), or None."""
    sentences = split_sentences(s["answer"])
    options = []
    for kf in s["key_facts"]:
        drop = set(_key_fact_sentences(sentences, kf))
        kept = [sent for i, sent in enumerate(sentences) if i not in drop]
        if drop and kept and not _states(" ".join([*kept, s["escalation"]]), kf):
            options.append(kept)
    if not options:
        return None
    return options[int(rng.integers(len(options)))]


def _wrong_dose(s: Mapping, rng: np.random.Generator) -> tuple[str, str, str, str] | None:
    """(chosen answer, rejected response, right dose, wrong dose) with one dose changed tenfold.

    If the dose occurs in the answer it is changed there; otherwise the dose statement is
    appended, correct in the chosen answer and changed in the rejected one.
    """
    options = []
    for df in s["dose_facts"]:
        pattern, wrong = _dose_regex(df["dose"]), _tenfold(df["dose"])
        if wrong == df["dose"]:
            continue
        if pattern.search(s["answer"]):
            chosen = s["answer"]
        elif pattern.search(df["statement"]):
            chosen = f"{s['answer']} {_sentence(df['statement'])}"
        else:
            continue
        # every occurrence changes, the escalation's too, so the right value is nowhere left
        options.append((chosen, pattern.sub(wrong, f"{chosen} {s['escalation']}"), df["dose"], wrong))
    if not options:
        return None
    return options[int(rng.integers(len(options)))]


def _avoids(text_: str, s: Mapping) -> bool:
    """Whether a text states none of the scenario's key facts and makes none of its unsafe claims."""
    phrases = [p for kf in s["key_facts"] for p in kf["accept"]]
    phrases += [p for uc in s["unsafe_claims"] for p in uc["patterns"]]
    return not any(_contains_phrase(text_, p) for p in phrases)


def _vague(s: Mapping, rng: np.random.Generator) -> str:
    """A hedging non-answer naming the drug; sentences that would state a key fact or an unsafe
    claim of this scenario are left out, so the answer says nothing at all."""
    drug = _main_drug(s)
    if not _avoids(drug, s):
        drug = "this medicine"
    openings = [o.format(drug=drug, Drug=_upper_first(drug)) for o in _VAGUE_OPENINGS]
    openings = [o for o in openings if _avoids(o, s)]
    hedges = [h for h in _VAGUE_HEDGES if _avoids(h, s)]
    closings = [c for c in _VAGUE_CLOSINGS if _avoids(c, s)]
    n_hedges = int(rng.integers(1, 7))  # up to a long non-answer: length is no sign of quality
    out = [openings[int(rng.integers(len(openings)))]] if openings else []
    out += [hedges[i] for i in rng.permutation(len(hedges))[:n_hedges]]
    if closings and rng.random() < 0.5:
        out.append(closings[int(rng.integers(len(closings)))])
    return " ".join(out)


def _verbose(kept: list[str], s: Mapping, chosen: str, rng: np.random.Generator) -> str:
    """Answer sentences ``kept`` (a key fact already missing) padded with filler until longer than ``chosen``."""
    filler = [f for f in (_FILLER[i] for i in rng.permutation(len(_FILLER))) if _avoids(f, s)]
    out = list(kept)
    n_added = 0
    while filler and (n_added < 2 or len(" ".join(out)) <= len(chosen)):
        # alternate: after the first sentence, then at the end
        out.insert(1 + n_added if n_added % 2 == 0 and len(out) > 1 else len(out), filler.pop())
        n_added += 1
    return " ".join(out)


def _short_answer(s: Mapping) -> str | None:
    """The answer without its last sentence, if every key fact is still stated."""
    sentences = split_sentences(s["answer"])
    if len(sentences) < 2:
        return None
    short = " ".join(sentences[:-1])
    with_escalation = f"{short} {s['escalation']}"
    return short if all(_states(with_escalation, kf) for kf in s["key_facts"]) else None


def _escalates(text_: str) -> bool:
    """Whether a text tells the patient to contact someone (the gold judge's reading of it)."""
    return any(c.entity == "care" and c.polarity > 0 for c in claims(text_))


def _off_topic(s: Mapping, others: Sequence[Mapping], rng: np.random.Generator) -> str | None:
    """Another case's expert answer, from the same category (the hardest to tell apart)."""
    pool = sorted((o for o in others if o["id"] != s["id"] and o["category"] == s["category"]), key=lambda o: o["id"])
    if not pool:
        return None
    other = pool[int(rng.integers(len(pool)))]
    return f"{other['answer']} {other['escalation']}"


def repetition_variants(s: Mapping, rng: np.random.Generator) -> tuple[str, str]:
    """(plain, repeated): the answer degenerating into repetition, and the same words without the repeats.

    Half the time a sentence is said again and again (the first sentence three times, then the
    escalation; plain: the first sentence once, then the escalation); otherwise a phrase loops at
    the end of the last sentence (plain: the answer as it is). This is what a small policy produces
    when it over-optimises. One draw from ``rng`` either way."""
    sentences = split_sentences(s["answer"])
    if rng.random() < 0.5:
        first = sentences[0]
        return " ".join([first, s["escalation"]]), " ".join([first, first, first, s["escalation"]])
    words = sentences[-1].rstrip(".").split()
    tail = " ".join(words[-2:]) if len(words) > 2 else sentences[-1].rstrip(".")
    looped = " ".join([*sentences[:-1], sentences[-1].rstrip(".") + ", " + ", ".join([tail] * 6) + "."])
    return " ".join(sentences), looped


def _repetition(s: Mapping, rng: np.random.Generator) -> str:
    """The repeated answer of :func:`repetition_variants` (the rejected answer of a ``repetition`` pair)."""
    return repetition_variants(s, rng)[1]
