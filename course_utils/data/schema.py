"""Validation: the JSONL loader, which checks every record against its file's JSON Schema
(``record_schemas``) and raises ``DataError`` naming the file, the line and the field; the
mapping of a jsonschema error to that message; and the checks across the records of a file."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any, Callable, Iterable

from jsonschema import ValidationError
from jsonschema.protocols import Validator

from course_utils.paths import DATA_DIR, REPO_ROOT

from .record_schemas import (
    PATTERN_PROBLEMS,
    PREFERENCE_SCHEMA,
    PROMPT_SCHEMA,
    SCENARIO_SCHEMA,
    SFT_SCHEMA,
    RecordValidator,
)
from .text_helpers import _norm
from .vocabulary import CATEGORIES

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
    """Raised while a line is parsed (a repeated key, NaN); the loader adds the file and the line."""

    def __init__(self, field: str | None, problem: str) -> None:
        super().__init__(problem)
        self.field = field
        self.problem = problem


# --------------------------------------------------------------------------------------------
# From a jsonschema error to the loader's words
# --------------------------------------------------------------------------------------------

# JSON Schema type names, as the messages say them
_TYPE_NAMES = {"string": "a string", "boolean": "a boolean", "integer": "an integer", "array": "a list",
               "object": "an object", "number": "a number", "null": "null"}


def _json_type(value: Any) -> str:
    """The JSON type of a loaded value, in the messages' words ("list" for an array)."""
    if value is None:
        return "null"
    return {bool: "boolean", int: "integer", float: "number", str: "string", list: "list", dict: "object"}.get(
        type(value), type(value).__name__
    )


def _field_path(parts: Iterable[str | int]) -> str | None:
    """``["key_facts", 1, "accept", 0]`` -> ``key_facts[1].accept[0]``; ``None`` for the record itself."""
    out = ""
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out or None


def _problem(error: ValidationError) -> tuple[str | None, str]:
    """The field and the problem a jsonschema error reports, worded as the course's messages.

    The field is the error's ``absolute_path``, plus the missing field of a ``required`` error or
    the first unexpected one of an ``additionalProperties`` error. A keyword without its own
    wording falls back to jsonschema's message.
    """
    path, value, rule, keyword = list(error.absolute_path), error.instance, error.validator_value, error.validator
    if keyword == "required":
        missing = next(name for name in rule if name not in value)
        return _field_path([*path, missing]), "missing required field"
    if keyword == "additionalProperties":
        expected = error.schema.get("properties", {})
        extra = next(name for name in value if name not in expected)
        return _field_path([*path, extra]), f"unknown field; expected only {', '.join(expected)}"
    where = _field_path(path)
    if keyword == "type" and where is None:
        return None, f"each line must be a JSON object, got {_json_type(value)}"
    if keyword == "type" and isinstance(rule, str):
        return where, f"must be {_TYPE_NAMES.get(rule, rule)}, got {_json_type(value)}"
    if keyword == "enum" and isinstance(value, str):
        noun = "category" if tuple(rule) == CATEGORIES else "value"
        return where, f"unknown {noun} {value!r}; expected one of {', '.join(map(str, rule))}"
    if keyword == "enum":
        return where, f"must be one of {', '.join(map(str, rule))}, got {value}"
    if keyword == "minItems":
        return where, f"must have at least {rule} item(s), got {len(value)}"
    if keyword == "uniqueItems":
        repeats = len(value) - len({json.dumps(item, sort_keys=True) for item in value})
        return where, f"items must be distinct, got {repeats} repeat(s)"
    if keyword == "pattern" and not value.strip():
        return where, "must be a non-empty string"
    if keyword == "pattern":
        template = PATTERN_PROBLEMS.get(rule, "{value} does not match the pattern " + rule)
        return where, template.replace("{value}", repr(value))
    return where, error.message


# --------------------------------------------------------------------------------------------
# The JSONL loader: a file spec, every line validated, errors naming file, line and field
# --------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class FileSpec:
    """A JSONL file: the JSON Schema of one record, the fields that must be unique across records,
    and an optional check over all records (returns ``(record index, field, problem)``).

    ``validator`` is built once, from ``schema``, when the spec is created."""

    schema: dict[str, Any] = dataclasses.field(hash=False)  # a dict: the spec hashes by its other fields
    unique: tuple[str, ...] = ("id",)
    check_all: Callable[[list[dict]], Iterable[tuple[int, str, str]]] | None = None
    validator: Validator = dataclasses.field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "validator", RecordValidator(self.schema))


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
    """``json.loads`` hook: a key twice in one object would otherwise be dropped silently."""
    keys = [k for k, _ in pairs]
    for k in keys:
        if keys.count(k) > 1:
            raise _Invalid(k, "appears more than once in the same object")
    return dict(pairs)


def _reject_constant(name: str) -> Any:
    """``json.loads`` hook: NaN and Infinity are not JSON."""
    raise _Invalid(None, f"invalid JSON: {name} is not allowed")


def _load_jsonl(path: Path, spec: FileSpec) -> list[dict]:
    """Read a JSONL file and validate every record against ``spec``; raise ``DataError``.

    A record that breaks its schema in several places is reported at its first error, in the
    order ``iter_errors`` finds them, which is the order the schema lists its keywords: the type,
    the missing fields, each field in turn (list items by index; within a string, ``TEXT``'s
    pattern before the string's own rules), then unknown fields. Unlike ``best_match``, a
    heuristic that may change between jsonschema versions, this depends only on the schema, and
    the loader stops at the first error instead of collecting them all."""
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
        error = next(spec.validator.iter_errors(value), None)
        if error is not None:
            raise DataError(path, number, *_problem(error))
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


SCENARIOS_FILE_SPEC = FileSpec(SCENARIO_SCHEMA, check_all=_check_scenarios)
SFT_FILE_SPEC = FileSpec(SFT_SCHEMA)
PREFERENCES_FILE_SPEC = FileSpec(PREFERENCE_SCHEMA)
EVAL_PROMPTS_FILE_SPEC = FileSpec(PROMPT_SCHEMA, unique=("id", "scenario_id"))
RL_PROMPTS_FILE_SPEC = FileSpec(PROMPT_SCHEMA, unique=("id", "prompt"))
