"""Validation: one spec per field, walked by ``_validate``; the field-spec tables of every file;
the JSONL loader whose errors (``DataError``) name the file, the line and the field; and the
checks across the records of the knowledge base."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable

from course_utils.paths import DATA_DIR, REPO_ROOT

from .text_helpers import _norm
from .vocabulary import CATEGORIES, FLAWS, ID_PATTERN, SPLITS

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


# --------------------------------------------------------------------------------------------
# The JSONL loader: a file spec, every line validated, errors naming file, line and field
# --------------------------------------------------------------------------------------------


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


def _path(path: str | Path | None, name: str) -> Path:
    """The path given, else ``data/<name>``: the default of every ``load_*``."""
    return Path(path) if path is not None else DATA_DIR / name


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

# the fields every dataset record starts with: its own id, and the case it belongs to
_ITEM_FIELDS = {"id": text(), "scenario_id": text(pattern=ID_PATTERN), "category": text(choices=CATEGORIES)}

SFT_SPEC = record(
    **_ITEM_FIELDS,
    prompt=text(),
    response=text(),
    featured=flag(),
)

PREFERENCE_SPEC = record(
    **_ITEM_FIELDS,
    split=text(choices=SPLITS),
    prompt=text(),
    chosen=text(),
    rejected=text(),
    flaw=text(choices=FLAWS),
    votes=list_of(integer(choices=(0, 1)), min_items=1),
    featured=flag(),
)

EVAL_PROMPT_SPEC = record(**_ITEM_FIELDS, prompt=text())


# --------------------------------------------------------------------------------------------
# Checks across the records of a file, and the spec of every file
# --------------------------------------------------------------------------------------------


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
