"""The pretraining corpus: passages about every scenario in several forms, shuffled; the
train/validation split of the corpus and its statistics."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping, Sequence

import numpy as np

from .knowledge import training_wordings
from .schema import DataError, _path, _read_lines
from .text_helpers import _lower_first, _norm, _rng, _sentence, split_sentences
from .vocabulary import CATEGORIES, CATEGORY_LABELS, DATASET_FILES


def _pick(rng: np.random.Generator, options: Sequence[str]) -> str:
    return options[int(rng.integers(len(options)))]


def _join_facts(facts: list[str]) -> str:
    facts = [f.rstrip(".") for f in facts]
    return facts[0] if len(facts) == 1 else ", ".join(facts[:-1]) + " and " + facts[-1]


@dataclass(frozen=True)
class _Case:
    """What the passages about one scenario may say, prepared once: only the answer, escalation,
    notes, key facts, dose statements, source and (unless the case is unseen) the training wordings."""

    title: str
    lower_title: str
    label: str
    answer: str
    esc: str
    notes: list[str]
    facts: list[str]
    doses: list[str]
    answer_sents: list[str]
    wordings: list[str]
    source: str


def _case(s: Mapping, with_questions: bool) -> _Case:
    return _Case(
        title=s["title"],
        lower_title=_lower_first(s["title"]),
        label=CATEGORY_LABELS[s["category"]],
        answer=s["answer"],
        esc=s["escalation"],
        notes=[_sentence(n) for n in s["notes"]],
        facts=[_lower_first(kf["fact"]) for kf in s["key_facts"]],
        doses=[_sentence(d["statement"]) for d in s["dose_facts"]],
        answer_sents=split_sentences(s["answer"]),
        wordings=training_wordings(s) if with_questions else [],
        source=s["source"],
    )


# Each passage form draws from the scenario's Generator in turn and returns its passages (none
# when the case lacks what the form needs); `_PASSAGE_FORMS` fixes their order, hence the draws.


def _textbook_notes(c: _Case, rng: np.random.Generator) -> list[str]:
    """1. textbook notes, all of them, in a random order, under one of several openings."""
    order = rng.permutation(len(c.notes))
    opening = _pick(rng, (
        f"{c.title}.", f"{c.label}: {c.lower_title}.", f"Reference notes on {c.lower_title}.",
        f"Clinical background: {c.lower_title}.", f"Topic: {c.lower_title}.",
    ))
    return [" ".join([opening, *(c.notes[i] for i in order)])]


_QA_FORMS = (
    "Question: {q} Answer: {a}",
    "A patient asked: \"{q}\" The pharmacist replied: \"{a}\"",
    "Q: {q} A: {a}",
    "Someone asked the pharmacy team: {q} The reply was: {a}",
    "Enquiry: {q} Response: {a}",
    "A caller to the medicines helpline asked: {q} The pharmacist answered: {a}",
)


def _question_and_answer(c: _Case, rng: np.random.Generator) -> list[str]:
    """2. question and answer passages: the question and its training paraphrases."""
    forms = rng.permutation(len(_QA_FORMS))
    return [_QA_FORMS[forms[k % len(forms)]].format(q=q, a=f"{c.answer} {c.esc}") for k, q in enumerate(c.wordings)]


def _leaflet(c: _Case, rng: np.random.Generator) -> list[str]:
    """3. patient leaflet."""
    heading = _pick(rng, ("Patient leaflet", "Information for patients", "What you need to know",
                          "Patient advice sheet"))
    help_line = _pick(rng, ("When to get help:", "Getting help:", "Important:", "Please note:"))
    leaflet = [f"{heading}: {c.lower_title}.", *c.answer_sents]
    if c.doses:
        leaflet.append(_pick(rng, ("Dose information:", "About the dose:", "Doses:")) + " " + " ".join(c.doses))
    leaflet.append(f"{help_line} {c.esc}")
    return [" ".join(leaflet)]


def _pharmacist_note(c: _Case, rng: np.random.Generator) -> list[str]:
    """4. pharmacist's note."""
    intro = _pick(rng, (
        f"Pharmacist's note on {c.lower_title}.",
        f"Pharmacist's note ({c.label.lower()}): {c.lower_title}.",
        f"Note from the pharmacy team about {c.lower_title}.",
    ))
    points = _pick(rng, ("Points to cover:", "Key points:", "The advice must include:",
                         "Check that the patient knows:"))
    note = [intro, f"{points} {_join_facts(c.facts)}."]
    note += [c.notes[i] for i in rng.permutation(len(c.notes))[:2]]
    note += c.doses
    note.append(_pick(rng, ("Advice given:", "Escalation:", "Safety-net advice:")) + " " + c.esc)
    return [" ".join(note)]


def _case_summary(c: _Case, rng: np.random.Generator) -> list[str]:
    """5. case summary (only with a question to quote; the asker is drawn either way)."""
    who = _pick(rng, ("A patient", "A carer", "A community nurse", "A junior doctor", "A relative of a patient"))
    if not c.wordings:
        return []
    return [" ".join([
        _pick(rng, (f"Case summary ({c.label.lower()}).", "Case summary.", f"Case report: {c.lower_title}.")),
        f"{who} asked: \"{_pick(rng, c.wordings)}\"",
        _pick(rng, ("Assessment:", "The pharmacist's assessment:", "Advice:")) + " " + c.answer,
        _pick(rng, ("Plan:", "Follow-up:", "Next steps:")) + " " + c.esc,
    ])]


def _checklist(c: _Case, rng: np.random.Generator) -> list[str]:
    """6. monitoring checklist."""
    items = [*c.facts, *(d.rstrip(".") for d in c.doses)]
    numbered = "; ".join(f"{i + 1}) {item}" for i, item in enumerate(items))
    check = _pick(rng, ("Monitoring checklist for", "Checklist for", "Before supplying, review"))
    return [f"{check} {c.lower_title}: {numbered}. "
            f"{_pick(rng, ('Escalate if needed:', 'Referral:', 'If in doubt:'))} {c.esc}"]


def _key_points(c: _Case, rng: np.random.Generator) -> list[str]:
    """7. key points (noun phrases, so listed rather than put into a sentence), with notes."""
    kept_notes = [c.notes[i] for i in rng.permutation(len(c.notes))[: max(2, len(c.notes) - 1)]]
    heading = _pick(rng, (
        "Key points for {t}:", "The main points about {t}:", "Summary for {t}:", "Remember for {t}:",
    )).format(t=c.lower_title)
    return [" ".join([f"{heading} {'; '.join(f.rstrip('.') for f in c.facts)}.", *kept_notes])]


def _counselling_points(c: _Case, rng: np.random.Generator) -> list[str]:
    """8. counselling points: the answer sentence by sentence, then the safety net."""
    heading = _pick(rng, ("Counselling points", "Talking to the patient", "What to tell the patient",
                          "Advice at the counter"))
    bullets = [f"({i + 1}) {sent}" for i, sent in enumerate(c.answer_sents)]
    return [f"{heading}: {c.lower_title}. " + " ".join(bullets) + f" ({len(bullets) + 1}) {c.esc}"]


def _prescriber_message(c: _Case, rng: np.random.Generator) -> list[str]:
    """9. a message to the prescriber."""
    opening = _pick(rng, (
        "Message to the prescriber about {t}.", "Handover note: {t}.", "Pharmacy referral regarding {t}.",
        "Note for the medical team: {t}.",
    )).format(t=c.lower_title)
    body = [opening]
    if c.wordings:
        body.append(_pick(rng, ("The patient asked:", "Query received:", "The question raised was:")) + " "
                    + _pick(rng, c.wordings))
    body += [c.notes[i] for i in rng.permutation(len(c.notes))[:2]]
    body.append(_pick(rng, ("Relevant points:", "Points checked:", "Considered:")) + " "
                + "; ".join(f.rstrip(".") for f in c.facts) + ".")
    body.append(_pick(rng, ("Source:", "Reference:", "Based on:")) + " " + _sentence(c.source))
    return [" ".join(body)]


def _dose_reference(c: _Case, rng: np.random.Generator) -> list[str]:
    """10. dose statements, when there are any."""
    if not c.doses:
        return []
    return [" ".join([_pick(rng, (f"Dosing in {c.lower_title}.", f"Doses and thresholds: {c.lower_title}.",
                                  f"Dose reference for {c.lower_title}.")), *c.doses,
                      c.notes[int(rng.integers(len(c.notes)))]])]


_PASSAGE_FORMS: tuple[Callable[[_Case, np.random.Generator], list[str]], ...] = (
    _textbook_notes, _question_and_answer, _leaflet, _pharmacist_note, _case_summary,
    _checklist, _key_points, _counselling_points, _prescriber_message, _dose_reference,
)


def _passages(s: Mapping, rng: np.random.Generator, with_questions: bool = True) -> list[str]:
    """Passages about one scenario in several forms. Uses only the answer, escalation, notes,
    key facts, dose statements and, with ``with_questions``, the training wordings (an unseen
    case contributes its knowledge, never a question)."""
    c = _case(s, with_questions)
    return [passage for form in _PASSAGE_FORMS for passage in form(c, rng)]


def build_corpus(scenarios: Sequence[Mapping], seed: int = 0, unseen: Sequence[Mapping] = ()) -> str:
    """Pretraining text: several passages per scenario in different forms, shuffled with a
    seeded Generator, one passage per paragraph (blank line between), trailing newline. The
    ``unseen`` cases add their knowledge passages but no question.

    Unsafe claims and the held-out ``variants[-1]`` never appear.
    """
    passages: list[str] = []
    for s in sorted(scenarios, key=lambda s: s["id"]):
        passages.extend(_passages(s, _rng(seed, "corpus", s["id"])))
    for s in sorted(unseen, key=lambda s: s["id"]):
        passages.extend(_passages(s, _rng(seed, "corpus", s["id"]), with_questions=False))
    # category overviews: the first note of every scenario of a category
    for cat in CATEGORIES:
        members = sorted((s for s in scenarios if s["category"] == cat), key=lambda s: s["id"])
        if members:
            titles = _join_facts([_lower_first(s["title"]) for s in members])
            passages.append(
                f"{CATEGORY_LABELS[cat]} covers cases such as {titles}. "
                + " ".join(_sentence(s["notes"][0]) for s in members)
            )
    order = _rng(seed, "corpus-order").permutation(len(passages))
    return "\n\n".join(passages[i] for i in order) + "\n"


def split_corpus(corpus: str, val_fraction: float = 0.1) -> tuple[str, str]:
    """(training text, validation text): the last ``val_fraction`` of the passages are held out,
    and every sentence of them that also occurs in a training passage is removed, so the
    validation loss measures prediction of text the model has not read, not recall of it.
    Passages left without a sentence are dropped."""
    paragraphs = [p for p in corpus.split("\n\n") if p.strip()]
    n_val = max(1, int(round(len(paragraphs) * val_fraction)))
    train, held = paragraphs[: len(paragraphs) - n_val], paragraphs[len(paragraphs) - n_val:]
    seen = {_norm(sent) for p in train for sent in split_sentences(p)}
    val = []
    for p in held:
        fresh = [sent for sent in split_sentences(p) if _norm(sent) not in seen]
        if fresh:
            val.append(" ".join(fresh))
    return "\n\n".join(train) + "\n", "\n\n".join(val) + "\n"


def corpus_stats(corpus: str) -> dict[str, int]:
    """Words (whitespace-separated), passages and distinct sentences of the corpus."""
    paragraphs = [p for p in corpus.split("\n\n") if p.strip()]
    sentences = {sent for p in paragraphs for sent in split_sentences(p)}
    return {"words": len(corpus.split()), "passages": len(paragraphs), "distinct_sentences": len(sentences)}


def load_corpus(path: str | Path | None = None) -> str:
    """The pretraining text (default ``data/corpus.txt``): UTF-8, not empty."""
    p = _path(path, DATASET_FILES["corpus"])
    lines = _read_lines(p)  # names the line of any byte that is not UTF-8
    text_ = "\n".join(lines) + "\n"
    if not text_.strip():
        raise DataError(p, 1, None, "the corpus is empty")
    return text_
