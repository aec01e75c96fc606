"""Text helpers shared by the builders: sentence splitting, phrase and dose matching, and the
seeded random Generators (``_rng``) every builder draws from."""

from __future__ import annotations

import hashlib
import re
from decimal import Decimal
from typing import Mapping

import numpy as np


def _norm(s: str) -> str:
    """Lowercase, single-spaced: how prompts are compared for leakage."""
    return " ".join(s.lower().split())


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


def _sentence(s: str) -> str:
    s = s.strip()
    return s if s[-1:] in ".!?" else s + "."
