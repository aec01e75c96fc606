"""What the judge knows about a scenario, and which sentences of an answer that knowledge supports.

In the spirit of FActScore (Min et al. 2023): an answer is cut into sentences and each is
checked against a knowledge source, here the scenario's own texts (expert answer, escalation,
notes, key facts, dose statements, and the wordings of its question). A sentence is

* **supported** when it is a coherent statement whose content words come mostly from that
  knowledge (precision >= ``SUPPORT_PRECISION``) and it names something the case is about
  (a word of its title, question or drugs);
* **escalation** when it only tells the patient whom to contact (neither credit nor cost);
* **empty** when it has no content word ("Yes.", "It depends.");
* **unsupported** otherwise, with the reason: ``fragment`` (under three words), ``keywords``
  (almost no function words: a keyword list), ``looping`` (repeats its own word triples),
  ``repeated`` (says an earlier sentence again), ``foreign drug`` (names a drug the case does not
  involve), or ``off topic`` (its words are not the case's).

A key fact counts only when a *supported* sentence states it: one of its ``accept`` phrases
occurs there (stems and synonyms folded, at most ``FACT_GAP`` extra words inside, "the drug"
standing for any of the case's drugs or "it"), and no negation in front of it in its clause
turns it round.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from typing import Mapping, Sequence

from .claims import ACTIVITIES, CARE_WORDS, Claim, claims, drug_entity, family, related, unambiguous
from .doses import Mention, _mentions, is_rejected
from .lexicon import DRUG_CLASSES, GENERAL_WORDS, all_classes
from .text import (NEGATION_CUES, Sentence, _analyse, canon, canonical_tokens, content_words, function_share,
                   repeated_share, sentences)

SUPPORT_PRECISION = 0.5
UNVERIFIED_PRECISION = 0.25  # a sentence naming the case's drug with this much support is unverified, not wrong
MIN_FUNCTION_SHARE = 0.15   # below it, a sentence reads as a keyword list
MAX_LOOPING = 0.20          # share of repeated word triples above which a sentence loops
REPEAT_OVERLAP = 0.8        # content overlap (Jaccard) with an earlier sentence that makes it a repeat
LINKING_VERBS = frozenset("include includes including is are be can may might should must will cause causes mean "
                          "means need needs has have lead leads raise raises reduce reduces increase increases affect "
                          "affects make makes become becomes".split())
FACT_GAP = 4                # extra words allowed inside a matched key-fact phrase
PLACEHOLDERS = frozenset({"medicine", "it", "them", "this", "these"})   # "stop the drug" -> "stop allopurinol"
URGENT_PHRASES = ("urgent", "a & e", "999", "today", "now", "same day", "ambulance", "straight away", "right away")
_NEGATORS = frozenset(canonical_tokens([w for c in NEGATION_CUES for w in c.split()
                                        if w not in {"instead", "rather", "than", "of", "absence", "to", "unlikely"}]))
_CLASSES = all_classes()
_GENERAL = frozenset(canon(w) for w in GENERAL_WORDS)


@dataclass(frozen=True)
class Fact:
    text: str
    patterns: tuple[tuple[str, ...], ...]   # canonical token sequences (function words dropped, negators kept)
    as_stated: bool = False                 # the knowledge states it negated ("not ... under 16"): negation is
                                            # part of it
    claims: tuple[tuple[str, int, str], ...] = ()   # advice it states: (entity, polarity, family),
                                                    # e.g. ("lithium", -1, "stance")
    urgency: bool = False                   # a fact that the case is urgent: met by an urgent escalation too


@dataclass(frozen=True)
class Knowledge:
    """A scenario compiled for judging (built once per scenario and cached)."""

    scenario_id: str
    category: str
    vocabulary: frozenset[str]      # content words of every knowledge text and of the question's wordings
    topic: frozenset[str]           # what the case is about: title, question, drugs
    anchors: frozenset[str]         # the case's own drug names (canonical)
    drugs: frozenset[str]           # drugs and classes the case involves (and their classes and members)
    drug_tokens: frozenset[str]     # canonical tokens of those names, for "the drug" in a key fact
    main_drug: str | None
    facts: tuple[Fact, ...]
    escalation_words: frozenset[str]
    urgent: bool
    expert: Mapping[str, int]       # unambiguous expert claims: entity -> polarity
    unsafe: tuple[Claim, ...]       # the knowledge base's unsafe-claim sentences, read as claims
    references: tuple[tuple[Mention, object], ...]  # (number, the analysed text it stands in): dose facts,
                                                    # answer, notes
    n_primary: int                  # the first n_primary references come from the dose facts and the expert answer
    given: tuple[Mention, ...]      # numbers the patient gave (title, question, wordings)


def is_urgent(tokens: Sequence[str]) -> bool:
    """Whether a text asks for care now: "urgent", "emergency", "immediately", "A&E", "999", "today" ..."""
    text = " " + " ".join(canonical_tokens(tokens)) + " "
    return any(f" {' '.join(canonical_tokens(p.split()))} " in text for p in URGENT_PHRASES)


def _pattern(phrase: str) -> tuple[str, ...]:
    """The canonical tokens of an accept phrase (a phrase made only of role words, such as
    "prescriber", states no fact: every escalation contains it)."""
    toks = _analyse(phrase).tokens
    if all(t in CARE_WORDS or t in ("the", "a", "your") for t in toks):
        return ()
    return tuple(canon(t) for t in toks if t in _NEGATORS or canon(t) in _NEGATORS or t[0].isalnum()
                 and t not in {"the", "a", "an", "your", "of", "to", "is", "are", "be", "should", "can", "may"})


def _drugs_in(text: str) -> list[str]:
    words = _analyse(text).tokens
    out, i = [], 0
    while i < len(words):
        hit = drug_entity(words, i)
        if hit:
            out.append(hit[0])
            i += hit[1]
        else:
            i += 1
    return out


def _closure(names: Sequence[str]) -> frozenset[str]:
    """The named drugs and classes, the classes of each drug, and the members of each class."""
    out = set(names)
    for n in names:
        out |= set(DRUG_CLASSES.get(n, ()))
        if n in _CLASSES:
            out |= {d for d, cls in DRUG_CLASSES.items() if n in cls}
    return frozenset(out)


def _texts(s: Mapping, *keys: str) -> list[str]:
    out: list[str] = []
    for k in keys:
        v = s.get(k, "")
        out += [str(x) for x in v] if isinstance(v, (list, tuple)) else [str(v)]
    return out


def compile_knowledge(s: Mapping) -> Knowledge:
    """Compile one scenario (schema in CONTRIBUTING.md) into what the rubric checks."""
    sid = str(s.get("id", ""))
    key_facts = s.get("key_facts")
    if not isinstance(key_facts, (list, tuple)) or not key_facts:
        raise ValueError(f"scenario {sid or '(no id)'}: 'key_facts' must be a non-empty list")
    for i, kf in enumerate(key_facts):
        if not isinstance(kf, Mapping) or "fact" not in kf or not kf.get("accept"):
            raise ValueError(f"scenario {sid or '(no id)'}: key_facts[{i}] needs 'fact' and a non-empty 'accept'")
    question = _texts(s, "title", "question", "variants")
    dose_statements = [str(d.get("statement", "")) for d in s.get("dose_facts", ()) or ()]
    knowledge = _texts(s, "answer", "escalation", "notes") + [str(k["fact"]) for k in key_facts] + dose_statements
    accept = [str(p) for k in key_facts for p in k["accept"]]
    vocabulary = {w for t in knowledge + question + accept for w in content_words(_analyse(t).tokens)}
    named = _drugs_in(" ".join(question + knowledge))
    drugs = _closure(named) | {ACTIVITIES[c] for t in question + knowledge + accept
                               for c in canonical_tokens(_analyse(t).tokens) if c in ACTIVITIES}
    topic = {w for t in question for w in content_words(_analyse(t).tokens)}
    topic |= {canon(w) for d in drugs for w in d.split()}
    topic |= {w for p in accept for w in content_words(_analyse(p).tokens)}
    main = next(iter(_drugs_in(" ".join(question))), None) or (named[0] if named else None)
    facts = []
    for kf in key_facts:
        patterns = tuple(dict.fromkeys(_pattern(p) for p in kf["accept"] if _pattern(p)))
        negated_in_knowledge = any(_negated_match(canonical_tokens(sent.tokens), sent.clause, pat)
                                   for t in knowledge for sent in sentences(t) for pat in patterns)
        advice = tuple(dict.fromkeys((c.entity, c.polarity, family(c.cue)) for p in [kf["fact"], *kf["accept"]]
                                     for c in claims(str(p)) if c.entity not in ("care", "monitoring")))
        urgency = any(is_urgent(_analyse(str(p)).tokens) for p in kf["accept"])
        facts.append(Fact(str(kf["fact"]), patterns, negated_in_knowledge, advice, urgency))
    facts = tuple(facts)
    expert_claims = claims(" ".join(_texts(s, "answer", "escalation")), main)
    expert = dict(unambiguous(expert_claims))
    # an unsafe sentence's claims that agree with the expert are misreadings, not the danger
    # (a claim whose danger is a dose is the dose checker's: its stance is not the danger)
    # and one the expert's own text makes is a misreading of the unsafe sentence
    unsafe = tuple(c for u in s.get("unsafe_claims", ()) or () if not _mentions(_analyse(str(u.get("claim", ""))))
                   for c in claims(str(u.get("claim", "")), main)
                   if (c.entity != "care" or c.polarity < 0) and expert.get(c.entity) != c.polarity
                   and not any(related(c.entity, x.entity, broad=False) and c.polarity == x.polarity
                               and family(c.cue) == family(x.cue) for x in expert_claims))
    escalation = str(s.get("escalation", ""))
    # references: the dose facts and the expert answer (primary), then the notes; a number the
    # expert text itself rejects ("1800 mg a day is too high") is not a reference
    primary = [_analyse(t) for t in dose_statements + _texts(s, "answer")]
    secondary = [_analyse(t) for t in _texts(s, "notes")]
    references = tuple((m, t) for t in primary + secondary for m in _mentions(t) if not is_rejected(m, t))
    n_primary = sum(1 for t in primary for m in _mentions(t) if not is_rejected(m, t))
    return Knowledge(
        scenario_id=sid, category=str(s.get("category", "")), vocabulary=frozenset(vocabulary),
        topic=frozenset(topic), drugs=drugs, anchors=frozenset(canon(w) for d in _closure(_drugs_in(" ".join(question)))
                                                               for w in d.split()),
        drug_tokens=frozenset(canon(w) for d in drugs for w in d.split()) | frozenset({"medicine"}),
        main_drug=main, facts=facts, escalation_words=frozenset(content_words(_analyse(escalation).tokens)),
        urgent=is_urgent(_analyse(escalation).tokens),
        expert=expert, unsafe=unsafe, references=references, n_primary=n_primary,
        given=tuple(m for t in question for m in _mentions(_analyse(t))),
    )


@functools.lru_cache(maxsize=1024)
def _cached(key: str) -> Knowledge:
    return compile_knowledge(json.loads(key))


def knowledge_of(scenario: Mapping) -> Knowledge:
    """The compiled knowledge of ``scenario`` (cached on its JSON text)."""
    if not isinstance(scenario, Mapping):
        raise TypeError(f"scenario must be a dict, got {type(scenario).__name__}")
    try:
        key = json.dumps(scenario, sort_keys=True, ensure_ascii=False)
    except TypeError:
        return compile_knowledge(scenario)
    return _cached(key)


# ----------------------------------------------------------------------------- sentences


@dataclass(frozen=True)
class SentenceVerdict:
    sentence: Sentence
    kind: str          # "supported", "escalation", "empty", "unsupported"
    reason: str = ""


def _foreign_drugs(sent: Sentence, k: Knowledge) -> list[str]:
    """Drugs, and substances such as grapefruit or alcohol, that the case does not involve."""
    named = _drugs_in(sent.text) + [ACTIVITIES[c] for c in canonical_tokens(sent.tokens) if c in ACTIVITIES]
    return list(dict.fromkeys(d for d in named if not any(related(d, x) for x in k.drugs)))


def classify(sents: Sequence[Sentence], k: Knowledge, escalating: set[int]) -> list[SentenceVerdict]:
    """A verdict for each sentence (see the module docstring); ``escalating`` holds the indices
    of sentences that contain an escalation instruction."""
    out: list[SentenceVerdict] = []
    seen: list[frozenset[str]] = []
    for sent in sents:
        words = set(sent.content)
        if len(words) < 2 and not _drugs_in(sent.text):
            out.append(SentenceVerdict(sent, "empty"))          # "Yes.", "Quite possibly.", "No, pause it."
            continue
        reason = ""
        if len([t for t in sent.tokens if t[0].isalnum()]) < 3:
            reason = "fragment"
        elif function_share(sent.tokens) < MIN_FUNCTION_SHARE and not set(sent.tokens) & LINKING_VERBS \
                and sent.commas < 2:
            reason = "keywords"                       # ("Signs include a, b and c" is a list, and prose)
        elif repeated_share(sent.tokens) > MAX_LOOPING:
            reason = "looping"
        elif any(len(words & w) / len(words | w) >= REPEAT_OVERLAP for w in seen):
            reason = "repeated"
        elif _foreign_drugs(sent, k):
            reason = f"foreign drug: {', '.join(_foreign_drugs(sent, k))}"
        seen.append(frozenset(words))
        if not reason:
            specific = words - _GENERAL or words
            precision = len(specific & k.vocabulary) / len(specific)
            if precision < SUPPORT_PRECISION or not words & k.topic:
                reason = "off topic"
                if words & k.anchors and precision >= UNVERIFIED_PRECISION:
                    out.append(SentenceVerdict(sent, "unverified",
                                               "about the case, in words its knowledge does not use"))
                    continue
        if reason == "off topic" and sent.index in escalating:
            out.append(SentenceVerdict(sent, "escalation"))      # whom to contact, and when
            continue
        out.append(SentenceVerdict(sent, "unsupported" if reason else "supported", reason))
    return out


def _matches(tokens: Sequence[str], pattern: Sequence[str], k: Knowledge) -> int | None:
    """Start of the first occurrence of ``pattern`` in ``tokens`` (canonical), allowing
    ``FACT_GAP`` extra tokens inside and "the drug" for any of the case's drugs; None if absent."""
    def same(tok: str, pat: str) -> bool:
        return tok == pat or (pat == "medicine" and (tok in k.drug_tokens or tok in PLACEHOLDERS))

    for start in range(len(tokens)):
        if not same(tokens[start], pattern[0]):
            continue
        j, pos = 1, start + 1
        while j < len(pattern) and pos < len(tokens) and pos - start < len(pattern) + FACT_GAP:
            if same(tokens[pos], pattern[j]):
                j += 1
            pos += 1
        if j == len(pattern):
            return start
    return None


def _negated_match(toks: Sequence[str], clause: Sequence[int], pattern: Sequence[str]) -> bool:
    """Whether ``pattern`` occurs exactly in ``toks`` with a negator before it in its clause."""
    m = len(pattern)
    for at in range(len(toks) - m + 1):
        if tuple(toks[at:at + m]) == tuple(pattern) and pattern[0] not in _NEGATORS:
            if any(toks[i] in _NEGATORS for i in range(at) if clause[i] == clause[at]):
                return True
    return False


def stated_facts(verdicts: Sequence[SentenceVerdict], k: Knowledge, answer_claims: Sequence[Claim] = (),
                 urgent: bool = False) -> dict[str, str]:
    """Fact -> the sentence that states it, over the supported sentences: one of its phrases, or
    the same advice about the same drug ("withhold lithium" is stated by "do not take any more
    lithium"), or, for a fact that the case is urgent, an urgent escalation."""
    found: dict[str, str] = {}
    usable = {v.sentence.index: v for v in verdicts if v.kind in ("supported", "escalation")}
    for fact in k.facts:
        for c in answer_claims:
            if c.sentence in usable and any(related(c.entity, e, broad=False) and c.polarity == p and family(c.cue) == f
                                            for e, p, f in fact.claims):
                found[fact.text] = usable[c.sentence].sentence.text
                break
        if fact.text not in found and fact.urgency and urgent:
            found[fact.text] = "(an urgent escalation)"
    for v in verdicts:
        if v.kind != "supported":
            continue
        toks = canonical_tokens(v.sentence.tokens)
        clause = v.sentence.clause
        for fact in k.facts:
            if fact.text in found:
                continue
            for pat in fact.patterns:
                at = _matches(toks, pat, k)
                if at is None:
                    continue
                negated = not fact.as_stated and pat[0] not in _NEGATORS and any(
                    toks[i] in _NEGATORS for i in range(at) if clause[i] == clause[at])
                if not negated:
                    found[fact.text] = v.sentence.text
                    break
    return found
