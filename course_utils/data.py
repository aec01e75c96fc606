"""Load and validate the knowledge base, and build the course's datasets from it.

Everything the chapters train on is built from one hand-written file,
``data/scenarios.jsonl``, by the deterministic builder in this module::

    python -m course_utils.data build [--out DIR]   # write the four datasets (default data/)
    python -m course_utils.data check               # exit 1 if data/ differs from a fresh build

Educational material, not medical advice.

Symbols and fields
==================

================================  =============================================================
name                              meaning
================================  =============================================================
``s``                             one scenario (a dict, schema in CONTRIBUTING.md)
``s["question"]``                 the prompt used for training (SFT, preferences, corpus)
``s["variants"][0]``, ``[1]``     paraphrases used for training
``s["variants"][-1]``             the held-out paraphrase: the evaluation prompt, never trained on
``s["rl_questions"]``             wordings only RL trains on (no SFT, preference or corpus text)
expert response                   ``s["answer"] + " " + s["escalation"]``
``CATEGORIES``                    the seven categories, in the course's order
``DataError``                     a validation failure: ``.path``, ``.line`` (1-based), ``.field``
``load_scenarios`` / ``load_*``   read one file, validate every record, return dicts
``build_corpus``                  pretraining text, one passage per paragraph (chapter 1)
``build_sft``                     demonstrations ``{id, scenario_id, category, prompt,
                                  response, featured}`` (chapter 2)
``build_preferences``             pairs ``{id, scenario_id, category, split, prompt, chosen,
                                  rejected, flaw, votes, featured}`` (chapters 3, 6)
``build_eval_prompts``            held-out prompts ``{id, scenario_id, category, prompt}``
``split``                         "train" or "test"; about 20% of the scenarios of every
                                  category are held out whole (no prompt in both splits)
``FLAWS``                         how a rejected answer is made worse (see below)
``ANNOTATORS``                    the three simulated annotators behind ``votes``
``votes[k]``                      1 if annotator ``k`` prefers ``chosen``, else 0
``featured``                      shown in the chapters: 12 demonstrations
                                  (``FEATURED_SFT_SCENARIOS``), 20 pairs
``lint_scenarios``                content checks the judge relies on (key facts stated, ...)
``split_sentences``               sentence splitter that keeps "2.5 mg" and "e.g." intact
================================  =============================================================

Flaws of a rejected answer
--------------------------
``unsafe_claim``      an unsafe claim sentence replaces the first sentence of the answer
``missing_key_fact``  the sentence(s) carrying one key fact are dropped
``wrong_dose``        a dose from ``dose_facts`` is changed tenfold ("500 mg" -> "5000 mg")
``no_escalation``     the answer without its escalation sentence
``vague``             a generic hedging non-answer that names the drug
``verbose``           the answer padded with irrelevant filler, missing a key fact and the
                      escalation: longer but worse (a trap for a length-biased reward)

``chosen`` is the expert response, or (when no key fact is lost) a shorter correct version
without the answer's last sentence, so that length alone does not decide a pair.

Simulated annotators (``votes`` in this order)
----------------------------------------------
``expert``   careful pharmacist: errs 5% of the time, at random
``hurried``  picks the longer answer unread 25% of the time, else errs 10%
             (about 20% errors in all, mostly on the verbose trap)
``lay``      errs 10%, but misses 40% of wrong doses and unsafe claims

All randomness comes from numpy Generators seeded by a SHA-256 hash of (seed, purpose,
scenario id): the output does not depend on dict order, on the order of the scenarios or on
Python's hash randomisation, and a scenario's pairs (all but their ``split`` and ``featured``
marks) do not change when other scenarios are added.
"""

from __future__ import annotations

import argparse
import difflib
import hashlib
import json
import re
import sys
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np

from course_utils.judge.claims import claims
from course_utils.paths import DATA_DIR, REPO_ROOT

__all__ = [
    "ANNOTATORS",
    "CATEGORIES",
    "CATEGORY_LABELS",
    "DATASET_FILES",
    "DataError",
    "FEATURED_SFT_SCENARIOS",
    "FLAWS",
    "Annotator",
    "build_all",
    "build_corpus",
    "build_eval_prompts",
    "build_preferences",
    "build_sft",
    "case_contrast_pairs",
    "check_datasets",
    "corpus_stats",
    "dumps_jsonl",
    "expert_response",
    "load_corpus",
    "load_eval_prompts",
    "load_preferences",
    "load_scenarios",
    "lint_scenarios",
    "load_sft",
    "preference_stats",
    "split_sentences",
    "write_datasets",
]

# --------------------------------------------------------------------------------------------
# Vocabulary of the knowledge base
# --------------------------------------------------------------------------------------------

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
SFT_VARIANTS = 7
# Whole cases kept out of SFT, preference and RL data: does a model answer what it only read about?
UNSEEN_FILE = "unseen_cases.jsonl"

ID_PATTERN = r"[A-Z]{2,5}-\d{2,3}"

# --------------------------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------------------------


def _display_path(path: Path) -> str:
    """``data/sft.jsonl`` for files inside the repository, the path as given otherwise."""
    try:
        return Path(path).resolve().relative_to(REPO_ROOT).as_posix()
    except ValueError:
        return str(path)


class DataError(ValueError):
    """A record that breaks its file's schema.

    ``str(err)`` reads ``data/sft.jsonl:12: field 'response': must be a non-empty string``;
    the parts are also attributes: ``.path`` (a ``Path``), ``.line`` (1-based) and
    ``.field`` (a field path such as ``key_facts[1].accept[0]``, or ``None`` when the
    problem is the line itself, e.g. invalid JSON).
    """

    def __init__(self, path: str | Path, line: int, field: str | None, problem: str) -> None:
        self.path = Path(path)
        self.line = line
        self.field = field
        self.problem = problem
        where = f"{_display_path(self.path)}:{line}"
        what = f"field '{field}': {problem}" if field is not None else problem
        super().__init__(f"{where}: {what}")


class _Invalid(Exception):
    """Raised inside the validator; the loader adds the file and the line."""

    def __init__(self, field: str | None, problem: str) -> None:
        super().__init__(problem)
        self.field = field
        self.problem = problem


# --------------------------------------------------------------------------------------------
# One validation mechanism: a spec per field, walked by `_validate`
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Spec:
    """What one value must look like.

    kind      "str" | "bool" | "int" | "list" | "object"
    choices   allowed values (categories, splits, flaws, votes 0/1)
    pattern   a regular expression a string must match in full (ids)
    lowercase a string must be lowercase (the judge's phrases)
    item      spec of every list item; min_items, distinct: list constraints
    fields    spec of every field of an object (all required, no others allowed)
    """

    kind: str
    choices: tuple = ()
    pattern: str | None = None
    lowercase: bool = False
    item: "Spec | None" = None
    min_items: int = 0
    distinct: bool = False
    fields: tuple[tuple[str, "Spec"], ...] = ()


def text(*, pattern: str | None = None, lowercase: bool = False, choices: Iterable[str] = ()) -> Spec:
    return Spec("str", pattern=pattern, lowercase=lowercase, choices=tuple(choices))


def flag() -> Spec:
    return Spec("bool")


def integer(*, choices: Iterable[int] = ()) -> Spec:
    return Spec("int", choices=tuple(choices))


def list_of(item: Spec, *, min_items: int = 0, distinct: bool = False) -> Spec:
    return Spec("list", item=item, min_items=min_items, distinct=distinct)


def record(**fields: Spec) -> Spec:
    return Spec("object", fields=tuple(fields.items()))


_TYPE_NAMES = {str: "a string", bool: "a boolean", int: "an integer", list: "a list", dict: "an object"}
_KIND_TYPES = {"str": str, "bool": bool, "int": int, "list": list, "object": dict}


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    return {bool: "boolean", int: "integer", float: "number", str: "string", list: "list", dict: "object"}.get(
        type(value), type(value).__name__
    )


def _validate(value: Any, spec: Spec, where: str | None) -> None:
    """Check ``value`` against ``spec``; raise ``_Invalid(field path, problem)`` on the first failure."""
    expected = _KIND_TYPES[spec.kind]
    # bool is a subclass of int in Python but not in the schema
    if not isinstance(value, expected) or (expected is int and isinstance(value, bool)):
        raise _Invalid(where, f"must be {_TYPE_NAMES[expected]}, got {_json_type(value)}")
    if spec.kind == "str":
        if not value.strip():
            raise _Invalid(where, "must be a non-empty string")
        if value != value.strip():
            raise _Invalid(where, "must not start or end with whitespace")
        if spec.choices and value not in spec.choices:
            noun = "category" if spec.choices == CATEGORIES else "value"
            raise _Invalid(where, f"unknown {noun} {value!r}; expected one of {', '.join(spec.choices)}")
        if spec.pattern is not None and not re.fullmatch(spec.pattern, value):
            raise _Invalid(where, f"{value!r} does not match the pattern {spec.pattern}")
        if spec.lowercase and value != value.lower():
            raise _Invalid(where, f"must be lowercase, got {value!r}")
    elif spec.kind == "int":
        if spec.choices and value not in spec.choices:
            raise _Invalid(where, f"must be one of {', '.join(map(str, spec.choices))}, got {value}")
    elif spec.kind == "list":
        if len(value) < spec.min_items:
            raise _Invalid(where, f"must have at least {spec.min_items} item(s), got {len(value)}")
        for i, item in enumerate(value):
            _validate(item, spec.item, f"{where}[{i}]")
        if spec.distinct and len(set(map(json.dumps, value))) != len(value):
            raise _Invalid(where, "items must be distinct, got "
                                  f"{len(value) - len(set(map(json.dumps, value)))} repeat(s)")
    elif spec.kind == "object":
        names = [name for name, _ in spec.fields]
        for name, sub in spec.fields:
            path = name if where is None else f"{where}.{name}"
            if name not in value:
                raise _Invalid(path, "missing required field")
            _validate(value[name], sub, path)
        for name in value:
            if name not in names:
                path = name if where is None else f"{where}.{name}"
                raise _Invalid(path, f"unknown field; expected only {', '.join(names)}")


@dataclass(frozen=True)
class FileSpec:
    """A JSONL file: the spec of one record, the fields that must be unique across records,
    and an optional check over all records (returns ``(record index, field, problem)``)."""

    record: Spec
    unique: tuple[str, ...] = ("id",)
    check_all: Callable[[list[dict]], Iterable[tuple[int, str, str]]] | None = None


def _read_lines(path: Path) -> list[str]:
    """The file's lines, each decoded as UTF-8 on its own, so an error can name its line."""
    data = Path(path).read_bytes()
    if not data:
        raise DataError(path, 1, None, "file is empty")
    raw_lines = data.split(b"\n")
    if raw_lines[-1] == b"":  # a single trailing newline is the normal end of a file
        raw_lines.pop()
    lines = []
    for number, raw in enumerate(raw_lines, start=1):
        if raw.endswith(b"\r"):
            raw = raw[:-1]
        try:
            lines.append(raw.decode("utf-8"))
        except UnicodeDecodeError as exc:
            raise DataError(path, number, None,
                            f"not valid UTF-8 (byte 0x{raw[exc.start]:02x} at column {exc.start + 1})") from None
    return lines


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict:
    keys = [k for k, _ in pairs]
    for k in keys:
        if keys.count(k) > 1:
            raise _Invalid(k, "appears more than once in the same object")
    return dict(pairs)


def _reject_constant(name: str) -> Any:
    raise _Invalid(None, f"invalid JSON: {name} is not allowed")


def _load_jsonl(path: Path, spec: FileSpec) -> list[dict]:
    """Read a JSONL file and validate every record against ``spec``; raise ``DataError``."""
    records: list[dict] = []
    seen: dict[str, dict[Any, int]] = {name: {} for name in spec.unique}
    for number, line in enumerate(_read_lines(path), start=1):
        if not line.strip():
            raise DataError(path, number, None, "blank line (only a single trailing newline is allowed)")
        try:
            value = json.loads(line, object_pairs_hook=_no_duplicate_keys, parse_constant=_reject_constant)
        except json.JSONDecodeError as exc:
            raise DataError(path, number, None, f"invalid JSON: {exc.msg} at column {exc.colno}") from None
        except _Invalid as exc:
            raise DataError(path, number, exc.field, exc.problem) from None
        if not isinstance(value, dict):
            raise DataError(path, number, None, f"each line must be a JSON object, got {_json_type(value)}")
        try:
            _validate(value, spec.record, None)
        except _Invalid as exc:
            raise DataError(path, number, exc.field, exc.problem) from None
        for name in spec.unique:
            first = seen[name].setdefault(value[name], number)
            if first != number:
                raise DataError(path, number, name, f"duplicate {name} {value[name]!r} (first on line {first})")
        records.append(value)
    if not records:
        raise DataError(path, 1, None, "file has no records")
    if spec.check_all is not None:
        for index, fieldname, problem in spec.check_all(records):
            raise DataError(path, index + 1, fieldname, problem)
    return records


# --------------------------------------------------------------------------------------------
# The field-spec tables
# --------------------------------------------------------------------------------------------

SCENARIO_SPEC = record(
    id=text(pattern=ID_PATTERN),
    category=text(choices=CATEGORIES),
    title=text(),
    question=text(),
    variants=list_of(text(), min_items=3, distinct=True),
    rl_questions=list_of(text(), distinct=True),
    answer=text(),
    escalation=text(),
    notes=list_of(text(), min_items=3),
    key_facts=list_of(record(fact=text(), accept=list_of(text(lowercase=True), min_items=1)), min_items=2),
    unsafe_claims=list_of(record(claim=text(), patterns=list_of(text(lowercase=True), min_items=1)), min_items=1),
    dose_facts=list_of(record(drug=text(), dose=text(), statement=text())),
    source=text(),
)

SFT_SPEC = record(
    id=text(),
    scenario_id=text(pattern=ID_PATTERN),
    category=text(choices=CATEGORIES),
    prompt=text(),
    response=text(),
    featured=flag(),
)

PREFERENCE_SPEC = record(
    id=text(),
    scenario_id=text(pattern=ID_PATTERN),
    category=text(choices=CATEGORIES),
    split=text(choices=SPLITS),
    prompt=text(),
    chosen=text(),
    rejected=text(),
    flaw=text(choices=FLAWS),
    votes=list_of(integer(choices=(0, 1)), min_items=1),
    featured=flag(),
)

EVAL_PROMPT_SPEC = record(
    id=text(),
    scenario_id=text(pattern=ID_PATTERN),
    category=text(choices=CATEGORIES),
    prompt=text(),
)


def _norm(s: str) -> str:
    """Lowercase, single-spaced: how prompts are compared for leakage."""
    return " ".join(s.lower().split())


def _check_scenarios(records: list[dict]) -> Iterable[tuple[int, str, str]]:
    """Checks across scenarios: the held-out variant is unseen, one id prefix per category."""
    training_prompts: dict[str, str] = {}
    for s in records:
        for p in (s["question"], *s["variants"][:-1]):
            training_prompts.setdefault(_norm(p), s["id"])
    held_outs = {_norm(s["variants"][-1]) for s in records}
    prefix_category: dict[str, tuple[str, str]] = {}
    for i, s in enumerate(records):
        if _norm(s["question"]) in map(_norm, s["variants"]):
            yield i, "question", "must differ from every variant"
        held_out = _norm(s["variants"][-1])
        if held_out in training_prompts:
            yield i, f"variants[{len(s['variants']) - 1}]", (
                f"the held-out variant repeats a training prompt of {training_prompts[held_out]}"
            )
        for k, q in enumerate(s["rl_questions"]):
            if _norm(q) in training_prompts or _norm(q) in held_outs:
                yield i, f"rl_questions[{k}]", "repeats a training or held-out wording (RL prompts must be new)"
        prefix = s["id"].split("-")[0]
        first = prefix_category.setdefault(prefix, (s["category"], s["id"]))
        if first[0] != s["category"]:
            yield i, "category", f"id prefix {prefix} belongs to {first[0]} (as in {first[1]}), got {s['category']}"


SCENARIOS_FILE_SPEC = FileSpec(SCENARIO_SPEC, check_all=_check_scenarios)
SFT_FILE_SPEC = FileSpec(SFT_SPEC)
PREFERENCES_FILE_SPEC = FileSpec(PREFERENCE_SPEC)
EVAL_PROMPTS_FILE_SPEC = FileSpec(EVAL_PROMPT_SPEC, unique=("id", "scenario_id"))
RL_PROMPTS_FILE_SPEC = FileSpec(EVAL_PROMPT_SPEC, unique=("id", "prompt"))

# --------------------------------------------------------------------------------------------
# Loaders
# --------------------------------------------------------------------------------------------


def _path(path: str | Path | None, name: str) -> Path:
    return Path(path) if path is not None else DATA_DIR / name


def load_scenarios(path: str | Path | None = None) -> list[dict]:
    """The knowledge base (default ``data/scenarios.jsonl``), every record validated, in file order."""
    return _load_jsonl(_path(path, SCENARIOS_FILE), SCENARIOS_FILE_SPEC)


def load_unseen_cases(path: str | Path | None = None) -> list[dict]:
    """The unseen cases (default ``data/unseen_cases.jsonl``): same schema as the knowledge base;
    their knowledge is in the pretraining corpus, their questions in no training file."""
    return _load_jsonl(_path(path, UNSEEN_FILE), SCENARIOS_FILE_SPEC)


def load_eval_unseen(path: str | Path | None = None) -> list[dict]:
    """Evaluation prompts of the unseen cases (default ``data/eval_unseen.jsonl``)."""
    return _load_jsonl(_path(path, DATASET_FILES["eval_unseen"]), EVAL_PROMPTS_FILE_SPEC)


def load_corpus(path: str | Path | None = None) -> str:
    """The pretraining text (default ``data/corpus.txt``): UTF-8, not empty."""
    p = _path(path, DATASET_FILES["corpus"])
    lines = _read_lines(p)  # names the line of any byte that is not UTF-8
    text_ = "\n".join(lines) + "\n"
    if not text_.strip():
        raise DataError(p, 1, None, "the corpus is empty")
    return text_


def load_sft(path: str | Path | None = None) -> list[dict]:
    """SFT demonstrations (default ``data/sft.jsonl``): ``{id, scenario_id, category, prompt, response, featured}``."""
    return _load_jsonl(_path(path, DATASET_FILES["sft"]), SFT_FILE_SPEC)


def load_preferences(path: str | Path | None = None) -> list[dict]:
    """Preference pairs (default ``data/preferences.jsonl``):
    ``{id, scenario_id, category, split, prompt, chosen, rejected, flaw, votes, featured}``."""
    return _load_jsonl(_path(path, DATASET_FILES["preferences"]), PREFERENCES_FILE_SPEC)


def load_rl_prompts(path: str | Path | None = None) -> list[dict]:
    """The RL prompts (default ``data/rl_prompts.jsonl``): ``{id, scenario_id, category, prompt}``,
    the two ``rl_questions`` of every case, in no other training set (``build_rl_prompts``)."""
    return _load_jsonl(_path(path, DATASET_FILES["rl_prompts"]), RL_PROMPTS_FILE_SPEC)


def load_eval_prompts(path: str | Path | None = None) -> list[dict]:
    """Held-out evaluation prompts (default ``data/eval_prompts.jsonl``): ``{id, scenario_id, category, prompt}``."""
    return _load_jsonl(_path(path, DATASET_FILES["eval_prompts"]), EVAL_PROMPTS_FILE_SPEC)


# --------------------------------------------------------------------------------------------
# Text helpers
# --------------------------------------------------------------------------------------------

# Words ending in a dot that do not end a sentence.
_ABBREVIATIONS = {"e.g.", "i.e.", "etc.", "vs.", "approx.", "dr.", "no.", "cf.", "fig.", "st.", "mr.", "mrs.", "ms."}
_BOUNDARY = re.compile(r"[.!?][\"'\u201d)\]]*\s+")
# A sentence starts with a capital, a digit, a quote or bracket, or a word like "eGFR".
_SENTENCE_START = re.compile(r"[A-Z0-9\"'\u201c(\[]|[a-z]+[A-Z]")


def split_sentences(passage: str) -> list[str]:
    """Split text into sentences at ``. ! ?`` followed by space and a sentence start.

    Dots inside numbers ("2.5 mg", "0.4-1.0 mmol/L") and after common abbreviations
    ("e.g. NSAIDs") do not split.
    """
    passage = passage.strip()
    sentences, start = [], 0
    for m in _BOUNDARY.finditer(passage):
        rest = passage[m.end():]
        if not _SENTENCE_START.match(rest):
            continue
        last_word = passage[start:m.start() + 1].split()[-1].lower()
        if last_word in _ABBREVIATIONS:
            continue
        sentences.append(passage[start:m.end()].strip())
        start = m.end()
    if passage[start:].strip():
        sentences.append(passage[start:].strip())
    return sentences


def _stable_int(*parts: object) -> int:
    """A 64-bit integer from the parts, independent of Python's hash randomisation."""
    digest = hashlib.sha256("\x1f".join(map(str, parts)).encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "little")


def _rng(*parts: object) -> np.random.Generator:
    """A numpy Generator seeded by a stable hash of the parts (e.g. seed, purpose, scenario id)."""
    return np.random.default_rng(_stable_int(*parts))


_PROPER_WORDS = {"St", "Stevens", "Parkinson's", "Alzheimer's", "Addison's", "Cushing's", "Raynaud's"}


def _lower_first(s: str) -> str:
    """``Warfarin with ibuprofen`` -> ``warfarin with ibuprofen``, ``A rise`` -> ``a rise``;
    leaves ``ACE inhibitor``, ``INR``, ``eGFR``, ``Z-drugs`` and ``St John's wort``."""
    first = s.split(" ", 1)[0]
    if first == "A" or (
        len(first) > 1 and first[0].isupper() and first[1].isalpha() and first[1:].islower()
        and first not in _PROPER_WORDS
    ):
        return s[0].lower() + s[1:]
    return s


def _upper_first(s: str) -> str:
    return s[:1].upper() + s[1:]


def _contains_phrase(text_: str, phrase: str) -> bool:
    return phrase.lower() in text_.lower()


def _states(text_: str, key_fact: Mapping) -> bool:
    """Whether the text states a key fact (any of its accepted phrases occurs)."""
    return any(_contains_phrase(text_, p) for p in key_fact["accept"])


def _dose_regex(dose: str) -> re.Pattern:
    """Match a dose as a whole value: ``30 mg`` but not inside ``300 mg`` or ``0.30 mg``."""
    return re.compile(r"(?<![\w.])" + re.escape(dose) + r"(?![\w])(?!\.\d)")


def _tenfold(dose: str) -> str:
    """Every number in the dose multiplied by ten: ``2.5 mg`` -> ``25 mg``, ``0.4-1.0 mmol/L`` -> ``4-10 mmol/L``."""

    def times_ten(m: re.Match) -> str:
        return format((Decimal(m.group(0)) * 10).normalize(), "f")

    return re.sub(r"\d+(?:\.\d+)?", times_ten, dose)


def expert_response(s: Mapping) -> str:
    """The expert pharmacist's full response: answer followed by the escalation advice."""
    return f"{s['answer']} {s['escalation']}"


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


# --------------------------------------------------------------------------------------------
# SFT demonstrations and evaluation prompts
# --------------------------------------------------------------------------------------------

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
    first ``SFT_VARIANTS`` variants); response = answer + escalation. The
    ``question`` demonstration of each id in ``featured`` is featured. More phrasings of the
    same question teach a small model to recognise the case rather than one wording."""
    ids = {s["id"] for s in scenarios}
    missing = [i for i in featured if i not in ids]
    if missing:
        raise ValueError(f"featured scenario(s) not in the knowledge base: {', '.join(missing)}")
    out = []
    for s in sorted(scenarios, key=lambda s: s["id"]):
        phrasings = [("q", s["question"])] + [(f"v{i}", v) for i, v in enumerate(s["variants"][:SFT_VARIANTS])]
        for suffix, prompt in phrasings:
            out.append({
                "id": f"SFT-{s['id']}-{suffix}",
                "scenario_id": s["id"],
                "category": s["category"],
                "prompt": prompt,
                "response": expert_response(s),
                "featured": suffix == "q" and s["id"] in featured,
            })
    return out


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


# --------------------------------------------------------------------------------------------
# Preference pairs
# --------------------------------------------------------------------------------------------


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


def _test_scenarios(scenarios: Sequence[Mapping], seed: int) -> set[str]:
    """About TEST_FRACTION of the scenarios of every category (at least one), by a stable hash."""
    test: set[str] = set()
    for cat in CATEGORIES:
        ids = sorted((s["id"] for s in scenarios if s["category"] == cat),
                     key=lambda i: (_stable_int(seed, "split", i), i))
        if ids:
            test.update(ids[: max(1, round(TEST_FRACTION * len(ids)))])
    return test


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


def _repetition(s: Mapping, rng: np.random.Generator) -> str:
    """The answer degenerating into repetition: a sentence said again and again, or a phrase
    looping at the end (what a small policy produces when it over-optimises)."""
    sentences = split_sentences(s["answer"])
    if rng.random() < 0.5:
        first = sentences[0]
        return " ".join([first, first, first, s["escalation"]])
    words = sentences[-1].rstrip(".").split()
    tail = " ".join(words[-2:]) if len(words) > 2 else sentences[-1].rstrip(".")
    return " ".join([*sentences[:-1], sentences[-1].rstrip(".") + ", " + ", ".join([tail] * 6) + "."])


def _scenario_pairs(s: Mapping, seed: int, split: str, others: Sequence[Mapping] = ()) -> list[dict]:
    rng = _rng(seed, "preferences", s["id"])
    sentences = split_sentences(s["answer"])
    kept = _drop_key_fact(s, rng)
    dose = _wrong_dose(s, rng)
    off_topic = _off_topic(s, others, rng)
    available = [
        f for f in FLAWS
        if not (f in ("missing_key_fact", "verbose") and kept is None) and not (f == "wrong_dose" and dose is None)
        and not (f == "no_escalation" and _escalates(s["answer"])) and not (f == "off_topic" and off_topic is None)
    ]
    flaws = [available[i] for i in rng.permutation(len(available))[:PAIRS_PER_SCENARIO]]
    prompts = training_wordings(s)
    offset = int(rng.integers(len(prompts)))
    short = _short_answer(s)
    pairs = []
    for k, flaw in enumerate(flaws):
        use_short = short is not None and rng.random() < P_SHORT_CHOSEN
        chosen_answer = short if use_short else s["answer"]
        if flaw == "unsafe_claim":
            claim = s["unsafe_claims"][int(rng.integers(len(s["unsafe_claims"])))]["claim"]
            rejected = " ".join([claim, *sentences[1:], s["escalation"]])
        elif flaw == "missing_key_fact":
            rejected = " ".join([*kept, s["escalation"]])
        elif flaw == "wrong_dose":
            chosen_answer = dose[0]  # the two answers differ only in the dose
            rejected = dose[1]
        elif flaw == "no_escalation":
            rejected = s["answer"]
        elif flaw == "vague":
            rejected = _vague(s, rng)
        elif flaw == "off_topic":
            rejected = off_topic
        elif flaw == "repetition":
            rejected = _repetition(s, rng)
        else:  # verbose
            rejected = _verbose(kept, s, f"{chosen_answer} {s['escalation']}", rng)
        chosen = f"{chosen_answer} {s['escalation']}"
        votes = [a.vote(rng, flaw, chosen, rejected) for a in ANNOTATORS]
        pairs.append({
            "id": f"PREF-{s['id']}-{k + 1}",
            "scenario_id": s["id"],
            "category": s["category"],
            "split": split,
            "prompt": prompts[(offset + k) % len(prompts)],
            "chosen": chosen,
            "rejected": rejected,
            "flaw": flaw,
            "votes": votes,
            "featured": False,
        })
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
                pairs.append({
                    "id": f"CASE-{s['id']}-{w + 1}-{pool[int(k)]['id']}", "scenario_id": s["id"],
                    "category": s["category"], "split": "train", "prompt": prompt, "chosen": chosen,
                    "rejected": rejected, "flaw": "off_topic",
                    "votes": [a.vote(rng, "off_topic", chosen, rejected) for a in ANNOTATORS], "featured": False,
                })
    return pairs


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


# --------------------------------------------------------------------------------------------
# Pretraining corpus
# --------------------------------------------------------------------------------------------


def _sentence(s: str) -> str:
    s = s.strip()
    return s if s[-1:] in ".!?" else s + "."


def _pick(rng: np.random.Generator, options: Sequence[str]) -> str:
    return options[int(rng.integers(len(options)))]


def _join_facts(facts: list[str]) -> str:
    facts = [f.rstrip(".") for f in facts]
    return facts[0] if len(facts) == 1 else ", ".join(facts[:-1]) + " and " + facts[-1]


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


def _passages(s: Mapping, rng: np.random.Generator, with_questions: bool = True) -> list[str]:
    """Passages about one scenario in several forms. Uses only the answer, escalation, notes,
    key facts, dose statements and, with ``with_questions``, the training wordings (an unseen
    case contributes its knowledge, never a question)."""
    title, lower_title = s["title"], _lower_first(s["title"])
    label = CATEGORY_LABELS[s["category"]]
    answer, esc = s["answer"], s["escalation"]
    notes = [_sentence(n) for n in s["notes"]]
    facts = [_lower_first(kf["fact"]) for kf in s["key_facts"]]
    doses = [_sentence(d["statement"]) for d in s["dose_facts"]]
    answer_sents = split_sentences(answer)
    out = []

    # 1. textbook notes, all of them, in a random order, under one of several openings
    order = rng.permutation(len(notes))
    opening = _pick(rng, (
        f"{title}.", f"{label}: {lower_title}.", f"Reference notes on {lower_title}.",
        f"Clinical background: {lower_title}.", f"Topic: {lower_title}.",
    ))
    out.append(" ".join([opening, *(notes[i] for i in order)]))

    # 2. question and answer passages: the question and the two training paraphrases
    qa_forms = (
        "Question: {q} Answer: {a}",
        "A patient asked: \"{q}\" The pharmacist replied: \"{a}\"",
        "Q: {q} A: {a}",
        "Someone asked the pharmacy team: {q} The reply was: {a}",
        "Enquiry: {q} Response: {a}",
        "A caller to the medicines helpline asked: {q} The pharmacist answered: {a}",
    )
    forms = rng.permutation(len(qa_forms))
    wordings = training_wordings(s) if with_questions else []
    for k, q in enumerate(wordings):
        out.append(qa_forms[forms[k % len(forms)]].format(q=q, a=f"{answer} {esc}"))

    # 3. patient leaflet
    heading = _pick(rng, ("Patient leaflet", "Information for patients", "What you need to know",
                          "Patient advice sheet"))
    help_line = _pick(rng, ("When to get help:", "Getting help:", "Important:", "Please note:"))
    leaflet = [f"{heading}: {lower_title}.", *answer_sents]
    if doses:
        leaflet.append(_pick(rng, ("Dose information:", "About the dose:", "Doses:")) + " " + " ".join(doses))
    leaflet.append(f"{help_line} {esc}")
    out.append(" ".join(leaflet))

    # 4. pharmacist's note
    intro = _pick(rng, (
        f"Pharmacist's note on {lower_title}.",
        f"Pharmacist's note ({label.lower()}): {lower_title}.",
        f"Note from the pharmacy team about {lower_title}.",
    ))
    points = _pick(rng, ("Points to cover:", "Key points:", "The advice must include:",
                         "Check that the patient knows:"))
    note = [intro, f"{points} {_join_facts(facts)}."]
    note += [notes[i] for i in rng.permutation(len(notes))[:2]]
    note += doses
    note.append(_pick(rng, ("Advice given:", "Escalation:", "Safety-net advice:")) + " " + esc)
    out.append(" ".join(note))

    # 5. case summary
    who = _pick(rng, ("A patient", "A carer", "A community nurse", "A junior doctor", "A relative of a patient"))
    if wordings:
        out.append(" ".join([
            _pick(rng, (f"Case summary ({label.lower()}).", "Case summary.", f"Case report: {lower_title}.")),
            f"{who} asked: \"{_pick(rng, wordings)}\"",
            _pick(rng, ("Assessment:", "The pharmacist's assessment:", "Advice:")) + " " + answer,
            _pick(rng, ("Plan:", "Follow-up:", "Next steps:")) + " " + esc,
        ]))

    # 6. monitoring checklist
    items = [*facts, *(d.rstrip(".") for d in doses)]
    numbered = "; ".join(f"{i + 1}) {item}" for i, item in enumerate(items))
    check = _pick(rng, ("Monitoring checklist for", "Checklist for", "Before supplying, review"))
    out.append(f"{check} {lower_title}: {numbered}. "
               f"{_pick(rng, ('Escalate if needed:', 'Referral:', 'If in doubt:'))} {esc}")

    # 7. key points (noun phrases, so listed rather than put into a sentence), with notes
    kept_notes = [notes[i] for i in rng.permutation(len(notes))[: max(2, len(notes) - 1)]]
    heading = _pick(rng, (
        "Key points for {t}:", "The main points about {t}:", "Summary for {t}:", "Remember for {t}:",
    )).format(t=lower_title)
    out.append(" ".join([f"{heading} {'; '.join(f.rstrip('.') for f in facts)}.", *kept_notes]))

    # 8. counselling points: the answer sentence by sentence, then the safety net
    heading = _pick(rng, ("Counselling points", "Talking to the patient", "What to tell the patient",
                          "Advice at the counter"))
    bullets = [f"({i + 1}) {sent}" for i, sent in enumerate(answer_sents)]
    out.append(f"{heading}: {lower_title}. " + " ".join(bullets) + f" ({len(bullets) + 1}) {esc}")

    # 9. a message to the prescriber
    opening = _pick(rng, (
        "Message to the prescriber about {t}.", "Handover note: {t}.", "Pharmacy referral regarding {t}.",
        "Note for the medical team: {t}.",
    )).format(t=lower_title)
    body = [opening]
    if wordings:
        body.append(_pick(rng, ("The patient asked:", "Query received:", "The question raised was:")) + " "
                    + _pick(rng, wordings))
    body += [notes[i] for i in rng.permutation(len(notes))[:2]]
    body.append(_pick(rng, ("Relevant points:", "Points checked:", "Considered:")) + " "
                + "; ".join(f.rstrip(".") for f in facts) + ".")
    body.append(_pick(rng, ("Source:", "Reference:", "Based on:")) + " " + _sentence(s["source"]))
    out.append(" ".join(body))

    # 10. dose statements, when there are any
    if doses:
        out.append(" ".join([_pick(rng, (f"Dosing in {lower_title}.", f"Doses and thresholds: {lower_title}.",
                                         f"Dose reference for {lower_title}.")), *doses,
                             notes[int(rng.integers(len(notes)))]]))
    return out


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


# --------------------------------------------------------------------------------------------
# Writing and checking the datasets
# --------------------------------------------------------------------------------------------


def dumps_jsonl(records: Iterable[Mapping]) -> str:
    """One JSON object per line (UTF-8 text, not escaped), with a trailing newline."""
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)


def build_all(
    scenarios: Sequence[Mapping], seed: int = 0, featured: Sequence[str] = FEATURED_SFT_SCENARIOS,
    unseen: Sequence[Mapping] = (),
) -> dict[str, str]:
    """The text of every dataset file, keyed by file name (``corpus.txt``, ``sft.jsonl``, ...)."""
    return {
        DATASET_FILES["corpus"]: build_corpus(scenarios, seed=seed, unseen=unseen),
        DATASET_FILES["eval_unseen"]: dumps_jsonl(build_eval_prompts(unseen)),
        DATASET_FILES["sft"]: dumps_jsonl(build_sft(scenarios, featured=featured)),
        DATASET_FILES["rl_prompts"]: dumps_jsonl(build_rl_prompts(scenarios)),
        DATASET_FILES["preferences"]: dumps_jsonl(build_preferences(scenarios, seed=seed, featured_scenarios=featured)),
        DATASET_FILES["eval_prompts"]: dumps_jsonl(build_eval_prompts(scenarios)),
    }


def write_datasets(
    out_dir: str | Path, scenarios: Sequence[Mapping], seed: int = 0, featured: Sequence[str] = FEATURED_SFT_SCENARIOS,
    unseen: Sequence[Mapping] = (),
) -> dict[str, Path]:
    """Build every dataset and write it into ``out_dir``; return the paths written."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = {}
    for name, content in build_all(scenarios, seed=seed, featured=featured, unseen=unseen).items():
        (out / name).write_text(content, encoding="utf-8", newline="\n")
        written[name] = out / name
    return written


def check_datasets(
    data_dir: str | Path,
    scenarios: Sequence[Mapping],
    seed: int = 0,
    featured: Sequence[str] = FEATURED_SFT_SCENARIOS,
    context: int = 3,
    unseen: Sequence[Mapping] = (),
) -> list[str]:
    """Compare the files in ``data_dir`` with a fresh build; return one summary per differing file."""
    problems = []
    for name, expected in build_all(scenarios, seed=seed, featured=featured, unseen=unseen).items():
        path = Path(data_dir) / name
        if not path.exists():
            problems.append(f"{name}: missing (run `python -m course_utils.data build`)")
            continue
        actual = path.read_bytes().decode("utf-8", errors="replace")
        if actual == expected:
            continue
        exp_lines, act_lines = expected.splitlines(), actual.splitlines()
        changed = sum(a != b for a, b in zip(exp_lines, act_lines)) + abs(len(exp_lines) - len(act_lines))
        first = next((i for i, (a, b) in enumerate(zip(exp_lines, act_lines)) if a != b),
                     min(len(exp_lines), len(act_lines)))
        diff = list(difflib.unified_diff(act_lines, exp_lines, "committed", "fresh build", n=0, lineterm=""))
        shown = [d if len(d) <= 160 else d[:157] + "..." for d in diff[2: 2 + 2 * context + 1]]
        problems.append(
            f"{name}: differs from a fresh build: {changed} line(s) changed, first at line {first + 1} "
            f"({len(act_lines)} committed vs {len(exp_lines)} built lines)\n    " + "\n    ".join(shown)
        )
    return problems


def _summary(scenarios: Sequence[Mapping], seed: int = 0, featured: Sequence[str] = FEATURED_SFT_SCENARIOS) -> str:
    corpus = corpus_stats(build_corpus(scenarios, seed=seed))
    sft = build_sft(scenarios, featured=featured)
    prefs = build_preferences(scenarios, seed=seed, featured_scenarios=featured)
    st = preference_stats(prefs)
    flaws = {f: sum(p["flaw"] == f for p in prefs) for f in FLAWS}
    return "\n".join([
        f"scenarios: {len(scenarios)} ("
        + ", ".join(f"{c} {sum(s['category'] == c for s in scenarios)}" for c in CATEGORIES) + ")",
        f"corpus: {corpus['words']} words, {corpus['passages']} passages, "
        f"{corpus['distinct_sentences']} distinct sentences",
        f"sft: {len(sft)} demonstrations, {sum(r['featured'] for r in sft)} featured",
        f"preferences: {len(prefs)} pairs ({st['test_share']:.0%} test), {sum(p['featured'] for p in prefs)} featured; "
        + ", ".join(f"{f} {n}" for f, n in flaws.items()),
        f"votes: split {st['split_vote_share']:.1%}, majority for rejected {st['majority_rejected_share']:.1%}, "
        f"chosen longer {st['chosen_longer_share']:.1%}; accuracy "
        + ", ".join(f"{a.name} {st['accuracy_' + a.name]:.1%}" for a in ANNOTATORS),
        f"eval prompts: {len(build_eval_prompts(scenarios))}",
        f"corpus split: {corpus_stats(split_corpus(build_corpus(scenarios, seed=seed))[1])['words']} validation words "
        "(sentences also in training removed)",
    ])


def main(argv: Sequence[str] | None = None) -> int:
    """``build [--out DIR]`` or ``check``; returns the exit status."""
    parser = argparse.ArgumentParser(prog="python -m course_utils.data", description=__doc__.splitlines()[0])
    parser.add_argument("--scenarios", type=Path, default=None, help="knowledge base (default data/scenarios.jsonl)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--featured", default=",".join(FEATURED_SFT_SCENARIOS),
                        help="comma-separated ids of the featured scenarios (default FEATURED_SFT_SCENARIOS)")
    sub = parser.add_subparsers(dest="command", required=True)
    build = sub.add_parser("build", help="write corpus.txt, sft.jsonl, preferences.jsonl, eval_prompts.jsonl")
    build.add_argument("--out", type=Path, default=DATA_DIR, help="output directory (default data/)")
    check = sub.add_parser("check", help="exit 1 if the committed datasets differ from a fresh build")
    check.add_argument("--data", type=Path, default=DATA_DIR, help="directory to check (default data/)")
    args = parser.parse_args(argv)
    try:
        scenarios = load_scenarios(args.scenarios)
        unseen_path = (args.scenarios.parent if args.scenarios else DATA_DIR) / UNSEEN_FILE
        unseen = load_unseen_cases(unseen_path) if unseen_path.exists() else []
    except DataError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    featured = tuple(i.strip() for i in args.featured.split(",") if i.strip())
    for finding in lint_scenarios(scenarios):
        print(f"warning: {finding}", file=sys.stderr)
    if args.command == "build":
        for path in write_datasets(args.out, scenarios, seed=args.seed, featured=featured, unseen=unseen).values():
            print(f"wrote {_display_path(path)}")
        print(_summary(scenarios, seed=args.seed, featured=featured))
        return 0
    problems = check_datasets(args.data, scenarios, seed=args.seed, featured=featured, unseen=unseen)
    if problems:
        print("The datasets are out of date:\n" + "\n".join(problems), file=sys.stderr)
        return 1
    print("datasets match a fresh build")
    return 0


if __name__ == "__main__":
    sys.exit(main())
