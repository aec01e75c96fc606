"""The JSON Schema (Draft 2020-12) of one record of every JSONL file, and the validator that applies them.

Read a schema as a table of fields: ``properties`` lists the fields in file order, each with its
JSON type, its rules and a ``description``; ``required`` (every field) and ``additionalProperties:
False`` (no other field) come from ``closed_object``. The loader (``schema._load_jsonl``) checks
every line with a ``RecordValidator`` built once per file kind and reports the first error as a
``DataError`` naming the file, the line and the field.

Checks that need more than one record (unique ids, held-out wordings that no training prompt
repeats, ...) are not expressible here: they stay in ``schema.py``.
"""

from __future__ import annotations

from typing import Any

from jsonschema import Draft202012Validator, validators

from .vocabulary import CATEGORIES, FLAWS, ID_PATTERN, SPLITS

DRAFT = "https://json-schema.org/draft/2020-12/schema"

# --------------------------------------------------------------------------------------------
# The string rules. A ``pattern`` is searched (not matched in full) with Python's ``re``, whose
# ``\s`` is exactly the whitespace ``str.strip`` removes. ``(?![\s\S])`` is "the end of the
# text": ``$`` would also match before a final newline.
# --------------------------------------------------------------------------------------------

TRIMMED = r"^\S(?:[\s\S]*\S)?(?![\s\S])"  # not empty, starts and ends with a non-whitespace character
NO_UPPERCASE = r"^[^A-Z]*(?![\s\S])"  # no capital letter (A-Z: the knowledge base is ASCII)
CASE_ID = rf"^(?:{ID_PATTERN})(?![\s\S])"  # a case id in full, e.g. REN-01

# How an error names a broken pattern (``schema._problem``); ``{value}`` stands for the offending string.
# Any pattern that a blank string breaks is reported as "must be a non-empty string".
PATTERN_PROBLEMS: dict[str, str] = {
    TRIMMED: "must not start or end with whitespace",
    NO_UPPERCASE: "must be lowercase, got {value}",
    CASE_ID: "{value} does not match the pattern " + ID_PATTERN,
}

# A non-empty string without leading or trailing whitespace: every string field of every file.
# Further rules of a string go into ``allOf``, so that this one is checked (and reported) first.
TEXT: dict[str, Any] = {"type": "string", "pattern": TRIMMED}
PHRASE: dict[str, Any] = {**TEXT, "allOf": [{"pattern": NO_UPPERCASE}]}
CATEGORY: dict[str, Any] = {
    **TEXT,
    "enum": list(CATEGORIES),
    "description": "one of the seven categories: " + ", ".join(CATEGORIES),
}
SCENARIO_ID: dict[str, Any] = {**TEXT, "allOf": [{"pattern": CASE_ID}]}


def closed_object(properties: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """An object with exactly these fields: all ``required``, no other allowed (``additionalProperties``)."""
    return {"type": "object", "required": list(properties), "properties": properties, "additionalProperties": False}


def array_of(description: str, items: dict[str, Any], min_items: int | None = None,
             distinct: bool = False) -> dict[str, Any]:
    """A list of ``items`` (at least ``min_items`` of them; all different if ``distinct``)."""
    return {"description": description, "type": "array", **({"minItems": min_items} if min_items is not None else {}),
            "items": items, **({"uniqueItems": True} if distinct else {})}


def phrases(description: str) -> dict[str, Any]:
    """A non-empty list of lowercase phrases (what the judge matches in an answer)."""
    return array_of(description, PHRASE, 1)


def record_schema(title: str, properties: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The schema of one line of a JSONL file: a ``closed_object``, with the draft it follows and a title."""
    return {"$schema": DRAFT, "title": title, **closed_object(properties)}


# --------------------------------------------------------------------------------------------
# The knowledge base: data/scenarios.jsonl and data/unseen_cases.jsonl
# --------------------------------------------------------------------------------------------

SCENARIO_SCHEMA: dict[str, Any] = record_schema(
    "A case of the knowledge base (data/scenarios.jsonl, data/unseen_cases.jsonl)",
    {
        "id": {**SCENARIO_ID, "description": "unique case id, CAT-NN (e.g. REN-01); one prefix per category"},
        "category": CATEGORY,
        "title": {**TEXT, "description": 'short case name, e.g. "Metformin with eGFR 25"'},
        "question": {**TEXT, "description": "the patient's or clinician's question; a training prompt"},
        "variants": array_of("the same question phrased differently; the last one is held out for evaluation "
                             "and never appears in a training file", TEXT, 3, distinct=True),
        "rl_questions": array_of("more wordings that only reinforcement learning uses (data/rl_prompts.jsonl): in "
                                 "no SFT demonstration, preference pair or corpus passage; [] for the unseen cases",
                                 TEXT, distinct=True),
        "answer": {**TEXT, "description": "the expert pharmacist answer, 2-4 short sentences, without escalation"},
        "escalation": {**TEXT, "description": "one sentence: when and to whom to escalate (prescriber, urgent care)"},
        "notes": array_of("standalone textbook-style factual sentences about the case (pretraining text)", TEXT, 3),
        "key_facts": array_of("what a good answer must state", closed_object({
            "fact": {**TEXT, "description": "the fact, in a few words"},
            "accept": phrases("lowercase phrases, any of which counts as stating the fact"),
        }), 2),
        "unsafe_claims": array_of("dangerous claims a bad answer could make", closed_object({
            "claim": {**TEXT, "description": "a full sentence making the dangerous claim"},
            "patterns": phrases("lowercase phrases that detect the claim in an answer"),
        }), 1),
        "dose_facts": {
            "description": "correct dose or threshold values; may be empty",
            "type": "array",
            "items": closed_object({
                "drug": {**TEXT, "description": "the drug, e.g. metformin"},
                "dose": {**TEXT, "description": 'the value, e.g. "500 mg", "eGFR 30", "2 mg/kg"'},
                "statement": {**TEXT, "description": "a sentence that states the dose"},
            }),
        },
        "source": {**TEXT, "description": "where the facts come from (label section, guideline, reference text)"},
    },
)

# --------------------------------------------------------------------------------------------
# The built datasets. Every record starts with its own id and the case it belongs to.
# --------------------------------------------------------------------------------------------

_ITEM_FIELDS: dict[str, dict[str, Any]] = {
    "id": {**TEXT, "description": "unique record id, e.g. SFT-REN-01-q"},
    "scenario_id": {**SCENARIO_ID, "description": "the id of the case in the knowledge base"},
    "category": CATEGORY,
}

SFT_SCHEMA: dict[str, Any] = record_schema(
    "An SFT demonstration (data/sft.jsonl)",
    {
        **_ITEM_FIELDS,
        "prompt": {**TEXT, "description": "a training wording of the case's question"},
        "response": {**TEXT, "description": "the expert response: the answer, with the escalation advice in half "
                                            "of a case's demonstrations (data.build_sft)"},
        "featured": {"type": "boolean", "description": "shown in the chapters (12 demonstrations)"},
    },
)

PREFERENCE_SCHEMA: dict[str, Any] = record_schema(
    "A preference pair (data/preferences.jsonl)",
    {
        **_ITEM_FIELDS,
        "split": {**TEXT, "enum": list(SPLITS), "description": "train or test; a case is in one split only"},
        "prompt": {**TEXT, "description": "a training wording of the case's question"},
        "chosen": {**TEXT, "description": "the better answer"},
        "rejected": {**TEXT, "description": "the worse answer: the chosen one made worse by `flaw`"},
        "flaw": {**TEXT, "enum": list(FLAWS), "description": "how the rejected answer was made worse"},
        "votes": {
            "description": "one vote per simulated annotator: 1 if it prefers chosen, else 0",
            "type": "array", "minItems": 1, "items": {"type": "integer", "enum": [0, 1]},
        },
        "featured": {"type": "boolean", "description": "shown in the chapters (20 pairs)"},
    },
)

PROMPT_SCHEMA: dict[str, Any] = record_schema(
    "A prompt (data/rl_prompts.jsonl, data/eval_prompts.jsonl, data/eval_unseen.jsonl)",
    {
        **_ITEM_FIELDS,
        "prompt": {**TEXT, "description": "the wording the model is asked"},
    },
)

# One schema per kind of file.
RECORD_SCHEMAS: dict[str, dict[str, Any]] = {
    "scenarios": SCENARIO_SCHEMA,
    "sft": SFT_SCHEMA,
    "preferences": PREFERENCE_SCHEMA,
    "prompts": PROMPT_SCHEMA,
}

# --------------------------------------------------------------------------------------------
# The validator: Draft 2020-12, except that an integer must be a JSON integer. The draft counts
# 1.0 as an integer too; Python would load it as a float, which no file ever had.
# --------------------------------------------------------------------------------------------


def _is_strict_integer(checker: Any, instance: Any) -> bool:
    """``1`` but neither ``1.0`` nor ``True`` (in Python ``bool`` is a subclass of ``int``)."""
    return isinstance(instance, int) and not isinstance(instance, bool)


RecordValidator = validators.extend(
    Draft202012Validator,
    type_checker=Draft202012Validator.TYPE_CHECKER.redefine("integer", _is_strict_integer),
)
