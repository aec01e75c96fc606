"""Text for the gold judge: normalised tokens grouped into sentences and clauses, phrase search,
negation, and the content words of a text (stemmed, synonyms folded).

``normalize`` is the token stream every rule matches on. Negation is decided inside a clause:
a cue ("not", "no", "never", "none", ...) at most ``NEGATION_WINDOW`` tokens in front of a
phrase, or a post-cue ("... is unlikely") right after it, negates it; clause words ("because",
"and", "but", ...) and punctuation end a clause, so "do not take ibuprofen because it
increases the risk of bleeding" still states the bleeding risk.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections import defaultdict
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Mapping, Sequence

from .lexicon import SYNONYMS

NEGATION_CUES: tuple[str, ...] = (
    "not",
    "no",
    "never",
    "without",
    "none",
    "nor",
    "neither",
    "instead of",
    "rather than",
    "unlikely to",
    "absence of",
)
# "not only bleeding but ..." affirms: a cue followed by one of these is not a negation.
PSEUDO_NEGATIONS: tuple[str, ...] = ("not only", "not just", "not least", "no doubt")
# A cue right after a phrase (at most POST_WINDOW tokens in between): "bleeding is unlikely".
POST_NEGATION_CUES: tuple[str, ...] = (
    "unlikely",
    "negligible",
    "ruled out",
    "not a concern",
    "not a problem",
    "not an issue",
    "not increased",
    "not affected",
    "not needed",
    "not necessary",
    "not required",
)
NEGATION_WINDOW = 5
POST_WINDOW = 3
# Words that start a new clause: a negation does not reach across them
# ("do not take ibuprofen because it increases the risk of bleeding" states the risk).
CLAUSE_WORDS: frozenset[str] = frozenset(
    "and but because since as so although though while whereas however therefore if when "
    "unless until before after which who due".split()
)

# --------------------------------------------------------------------------------------------
# Text normalisation
# --------------------------------------------------------------------------------------------

# In front of an escalation phrase these dismiss it: "no need to ask your doctor".
# ("without" is *not* one: "do not stop without speaking to your prescriber" escalates.)
DISMISSAL_CUES: tuple[str, ...] = (
    "no need",
    "not need",
    "need not",
    "never need",
    "not necessary",
    "unnecessary",
    "no point",
    "not bother",
    "instead of",
    "rather than",
)

# Words that carry no topic (left out of the subject terms S and the vocabulary V).
STOPWORDS: frozenset[str] = frozenset(
    "a an the of to in on at for with and or by from as is are be been being was were it its "
    "this that these those your you my i we they he she his her their our can may might should "
    "must will would could do does did not no if when than then so but also any all some such "
    "more most less very into over under about after before during while per each other only "
    "use used using uses patient patients person people take taking taken dose doses dosing "
    "medicine medicines medication drug drugs plus vs versus what how who which there".split()
) | frozenset(
    # words that say nothing about a case, however often a case's texts use them
    "usually usual often regularly regular main mainly common commonly generally general "
    "normally normal sometimes always never much many well good better best important "
    "possible possibly especially another same different new first high low higher lower "
    "still even just like one two few several whole part make makes made need needs needed "
    "give given gives help helps get gets time times thing things way ways kind sure right "
    "around able".split()
)

_TOKEN = re.compile(r"\d+(?:\.\d+)?|[a-z][a-z0-9]*|<=|>=|[<>=%/&]|[-.!?;:,()\[\]{}\"\n]")
_NUMBER = re.compile(r"\d+(?:\.\d+)?")
_SENTENCE_END = frozenset(".!?\n")
_CLAUSE_END = frozenset(",;:()[]{}\"")
_CONTRACTIONS: dict[str, tuple[str, ...]] = {
    "nt": ("not",),
    "cannot": ("can", "not"),
    "cant": ("can", "not"),
    "wont": ("will", "not"),
    "dont": ("do", "not"),
    "doesnt": ("does", "not"),
    "didnt": ("did", "not"),
    "isnt": ("is", "not"),
    "arent": ("are", "not"),
    "wasnt": ("was", "not"),
    "werent": ("were", "not"),
    "shouldnt": ("should", "not"),
    "wouldnt": ("would", "not"),
    "couldnt": ("could", "not"),
    "mustnt": ("must", "not"),
    "neednt": ("need", "not"),
    "hasnt": ("has", "not"),
    "havent": ("have", "not"),
    "hadnt": ("had", "not"),
}
_PRE_REPLACE: tuple[tuple[str, str], ...] = (
    ("\u2264", " <= "),
    ("\u2265", " >= "),
    ("\u03bcg", "mcg"),  # NFKC has turned the micro sign into a Greek mu
    ("\u2013", "-"),
    ("\u2212", "-"),
    ("\u2014", " - "),
    ("\u2018", "'"),
    ("\u2019", "'"),
    ("\u201c", '"'),
    ("\u201d", '"'),
)
_PRE_REGEX: tuple[tuple[re.Pattern, str], ...] = (
    (re.compile(r"\be\s*\.\s*g\s*\."), " eg "),
    (re.compile(r"\bi\s*\.\s*e\s*\."), " ie "),
    (re.compile(r"\b(etc|vs|approx|dr|cf)\s*\."), r" \1 "),
    (re.compile(r"(?<=\d) \. (?=\d)"), "."),  # "0 . 4" from a tokenizer that spaces everything
    (re.compile(r"(?<=\d),(?=\d{3}(?!\d))"), ""),  # 1,000 -> 1000
    (re.compile(r"(?<=[a-z])\s*'\s*(?=(?:t|s|re|ve|ll|d|m)\b)"), ""),  # doesn't / doesn ' t -> doesnt
    (re.compile(r"'"), " "),
    # everyday idioms read as the word they mean
    (re.compile(r"\bkeep an eye on\b"), "monitor"),
    (re.compile(r"\blook(?:ing)? out for\b"), "monitor for"),
    (re.compile(r"\bget in touch with\b"), "contact"),
    (re.compile(r"\bbuilds? up\b"), "accumulates"),
    (re.compile(r"\bvery little\b"), "small amounts"),
)


@dataclass(frozen=True)
class _Text:
    """A normalised text: tokens, the sentence and clause of each token, an index by token."""

    tokens: tuple[str, ...]
    sentence: tuple[int, ...]
    clause: tuple[int, ...]
    index: Mapping[str, tuple[int, ...]]
    commas: tuple[int, ...] = ()      # sentence ids, once per comma inside them

    def __len__(self) -> int:
        return len(self.tokens)


def _canonical_number(tok: str) -> str:
    """``1.0`` -> ``1``, ``0.50`` -> ``0.5``: one spelling per value."""
    try:
        return format(Decimal(tok).normalize(), "f")
    except InvalidOperation:  # pragma: no cover - the regex only lets digits through
        return tok


def _prepare(text: str) -> str:
    text = unicodedata.normalize("NFKC", text).lower()
    for old, new in _PRE_REPLACE:
        text = text.replace(old, new)
    # strip accents (naïve -> naive) after the Greek mu is gone
    text = "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))
    for pattern, new in _PRE_REGEX:
        text = pattern.sub(new, text)
    return text


@functools.lru_cache(maxsize=4096)
def _analyse(text: str) -> _Text:
    """Tokenise ``text``: lowercase words, canonical numbers and the symbols ``< > <= >= = % / &``,
    plus ``-`` between two numbers (a range). Punctuation and clause words only mark boundaries."""
    prepared = _prepare(text)
    commas: list[int] = []
    raw = list(_TOKEN.finditer(prepared))
    tokens: list[str] = []
    sentence: list[int] = []
    clause: list[int] = []
    s_id = c_id = 0

    def boundary(new_sentence: bool) -> None:
        nonlocal s_id, c_id
        if not tokens:
            return
        if clause[-1] == c_id:
            c_id += 1
        if new_sentence and sentence[-1] == s_id:
            s_id += 1

    for k, m in enumerate(raw):
        tok = m.group(0)
        if tok in _SENTENCE_END:
            boundary(True)
            continue
        if tok in _CLAUSE_END:
            if tok == "," and tokens:
                commas.append(s_id)
            boundary(False)
            continue
        if tok == "-":
            nxt = raw[k + 1].group(0) if k + 1 < len(raw) else ""
            if tokens and _NUMBER.fullmatch(tokens[-1]) and _NUMBER.fullmatch(nxt) and sentence[-1] == s_id:
                tokens.append("-")
                sentence.append(s_id)
                clause.append(c_id)
            elif (m.start() > 0 and prepared[m.start() - 1].isspace()) or (
                m.end() < len(prepared) and prepared[m.end()].isspace()
            ):
                boundary(False)  # a dash between words: " - "
            continue  # a hyphen inside a word joins nothing: anti-inflammatory = anti inflammatory
        if _NUMBER.fullmatch(tok):
            parts: tuple[str, ...] = (_canonical_number(tok),)
        else:
            parts = _CONTRACTIONS.get(tok, (tok,))
            if tok in CLAUSE_WORDS:
                boundary(False)
        for p in parts:
            tokens.append(p)
            sentence.append(s_id)
            clause.append(c_id)
    index: dict[str, list[int]] = defaultdict(list)
    for i, tok in enumerate(tokens):
        index[tok].append(i)
    return _Text(tuple(tokens), tuple(sentence), tuple(clause), {k: tuple(v) for k, v in index.items()},
                 tuple(commas))


def normalize(text: str) -> str:
    """The token stream every rule of the judge matches on, joined by single spaces.

    Lowercase; accents, curly quotes and dashes unified; ``≤ ≥`` -> ``<= >=``, ``µg`` -> ``mcg``;
    numbers canonical (``1,000`` -> ``1000``, ``1.0`` -> ``1``) and split from their unit
    (``500mg`` -> ``500 mg``); contractions expanded (``doesn't``, ``doesn ' t`` -> ``does not``;
    ``cannot`` -> ``can not``); punctuation dropped except ``< > <= >= = % / &`` and a ``-``
    between two numbers. So ``"eGFR<30"``, ``"eGFR < 30"`` and ``"EGFR  <  30."`` all give
    ``"egfr < 30"``, and ``"0.4-1.0 mmol/L"`` gives ``"0.4 - 1 mmol / l"``. Phrases match on whole
    tokens: ``"inr"`` occurs in ``"INR."`` but not in ``"inrush"``.
    """
    return " ".join(_analyse(text).tokens)


@functools.lru_cache(maxsize=8192)
def _phrase(p: str) -> tuple[str, ...]:
    return _analyse(p).tokens


def _find(text: _Text, phrase: tuple[str, ...]) -> list[int]:
    """Start positions of ``phrase`` in ``text`` (whole tokens, inside one sentence)."""
    if not phrase:
        return []
    m = len(phrase)
    out = []
    for i in text.index.get(phrase[0], ()):
        if text.tokens[i : i + m] == phrase and text.sentence[i + m - 1] == text.sentence[i]:
            out.append(i)
    return out


_NEG_CUES = tuple(_phrase(c) for c in NEGATION_CUES)
_PSEUDO = tuple(_phrase(c) for c in PSEUDO_NEGATIONS)
_POST_CUES = tuple(_phrase(c) for c in POST_NEGATION_CUES)
_DISMISS = tuple(_phrase(c) for c in DISMISSAL_CUES)


def _has_own_cue(phrase: tuple[str, ...]) -> bool:
    """Whether the phrase contains a negation cue itself ("do not use", "no risk of bleeding")."""
    return any(
        phrase[k : k + len(c)] == c for c in _NEG_CUES for k in range(len(phrase) - len(c) + 1)
    )


def _cue_before(text: _Text, start: int, window: int, cues: tuple[tuple[str, ...], ...]) -> int | None:
    """Position of a cue that ends at most ``window`` tokens before ``start`` in the same clause."""
    toks = text.tokens
    for j in range(start - 1, max(-1, start - 2 - window), -1):
        if text.clause[j] != text.clause[start]:
            return None
        for c in cues:
            b = j - len(c) + 1
            if b >= 0 and toks[b : j + 1] == c and text.clause[b] == text.clause[start]:
                if any(toks[b : b + len(p)] == p for p in _PSEUDO):
                    continue
                return b
    return None


def _cue_after(text: _Text, end: int) -> int | None:
    """End position of a post-negation cue starting at most POST_WINDOW tokens after ``end``."""
    toks = text.tokens
    last = end - 1
    for k in range(end, min(len(toks), end + POST_WINDOW + 1)):
        if text.clause[k] != text.clause[last]:
            return None
        for c in _POST_CUES:
            if toks[k : k + len(c)] == c and text.clause[min(k + len(c), len(toks)) - 1] == text.clause[last]:
                return k + len(c)
    return None


@dataclass(frozen=True)
class _Span:
    start: int
    end: int
    phrase: str
    tokens: tuple[str, ...]


def _spans(text: _Text, phrases: Sequence[str]) -> list[_Span]:
    """Occurrences of any of ``phrases``; overlapping ones merge into one span named by its
    longest phrase (so "bleeding" inside "risk of bleeding" is judged with the whole statement)."""
    hits = []
    for p in phrases:
        toks = _phrase(p)
        for i in _find(text, toks):
            hits.append((i, i + len(toks), p, toks))
    hits.sort(key=lambda h: (h[0], -len(h[3])))
    merged: list[list] = []
    for start, end, p, toks in hits:
        cur = merged[-1] if merged else None
        if cur is not None and start < cur[1]:
            cur[1] = max(cur[1], end)
            if len(toks) > len(cur[3]):
                cur[2], cur[3] = p, toks
        else:
            merged.append([start, end, p, toks])
    return [_Span(*m) for m in merged]


def _negation(text: _Text, span: _Span, window: int = NEGATION_WINDOW) -> str | None:
    """The negated stretch of text ("not increase the risk of bleeding") if ``span`` is negated,
    else None. A phrase that contains its own cue is taken as it stands."""
    if _has_own_cue(span.tokens):
        return None
    b = _cue_before(text, span.start, window, _NEG_CUES)
    if b is not None:
        return " ".join(text.tokens[b : span.end])
    e = _cue_after(text, span.end)
    if e is not None:
        return " ".join(text.tokens[span.start : e])
    return None



# --------------------------------------------------------------------------------------------
# Sentences, stems and content words
# --------------------------------------------------------------------------------------------

# Words that make a sentence a sentence (function words and auxiliaries). A run of drug names
# and key phrases without them is a keyword list, not a statement.
FUNCTION_WORDS: frozenset[str] = frozenset(
    "a an the of to in on at for with and or by from as is are be been being was were it its this that "
    "these those your you my i we they he she his her their our can may might should must will would could "
    "do does did not no if when than then so but also any all some such into over under about after before "
    "during while per each only there what how who which has have had need needs get gets keep like where more most "
    "very too because than just also even still yes quite possibly probably perhaps maybe well please".split()
)


@dataclass(frozen=True)
class Sentence:
    """One sentence of a text: its tokens (``normalize``), their clause ids, and its content words."""

    index: int
    tokens: tuple[str, ...]
    clause: tuple[int, ...]
    content: tuple[str, ...]          # canonical content words, in order (repeats kept)
    commas: int = 0                   # a list written with commas reads as prose, not as keywords

    @property
    def text(self) -> str:
        return " ".join(self.tokens)

    def find(self, phrase: Sequence[str]) -> list[int]:
        """Start positions of ``phrase`` (canonical tokens) among this sentence's canonical tokens."""
        toks = canonical_tokens(self.tokens)
        m = len(phrase)
        return [i for i in range(len(toks) - m + 1) if toks[i:i + m] == tuple(phrase)] if m else []


_IRREGULAR = {"using": "use", "used": "use", "uses": "use", "was": "be", "were": "be", "is": "be", "are": "be",
              "been": "be", "being": "be", "has": "have", "had": "have", "does": "do", "did": "do", "done": "do",
              "taken": "tak", "took": "tak", "given": "giv", "gave": "giv", "seen": "see", "saw": "see",
              "began": "begin", "begun": "begin"}


@functools.lru_cache(maxsize=65536)
def stem(word: str) -> str:
    """A light stem for matching: plural and verb endings and a final e folded (``bleeds`` ->
    ``bleed``, ``kidneys`` -> ``kidney``, ``stopping`` -> ``stop``, ``taking`` and ``take`` ->
    ``tak``); numbers and words of three letters or fewer unchanged."""
    if word in _IRREGULAR:
        return _IRREGULAR[word]
    w = word
    if len(w) <= 3 or not w.replace("-", "").isalpha():
        return w
    for suffix, repl, min_len in (("ation", "at", 8), ("iness", "y", 7), ("sion", "s", 7), ("ness", "", 7),
                                  ("ies", "y", 5), ("sses", "ss", 5), ("ing", "", 6), ("ed", "", 5),
                                  ("es", "e", 5), ("s", "", 4)):
        if w.endswith(suffix) and len(w) >= min_len and not (suffix == "s" and w.endswith(("ss", "us", "is"))) \
                and not (suffix == "ed" and w.endswith("eed")):
            w = w[: len(w) - len(suffix)] + repl
            break
    if len(w) > 3 and w[-1] == w[-2] and w[-1] not in "lsz" and word.endswith(("ing", "ed")):
        w = w[:-1]                                                   # stopping -> stopp -> stop
    if len(w) > 3 and w.endswith("e"):
        w = w[:-1]                                                   # take, taking -> tak
    return w


def canon(token: str) -> str:
    """The canonical form of a token: its synonym (``renal`` -> ``kidney``) or its stem."""
    if token in SYNONYMS:
        return SYNONYMS[token]
    s = stem(token)
    return SYNONYMS.get(s, s)


def canonical_tokens(tokens: Sequence[str]) -> tuple[str, ...]:
    return tuple(canon(t) for t in tokens)


def is_content(token: str) -> bool:
    """Whether a (normalised) token carries content: a word or a number, not a function word."""
    return token not in STOPWORDS and token not in FUNCTION_WORDS and (token[0].isalnum())


def content_words(tokens: Sequence[str]) -> tuple[str, ...]:
    """The canonical content words of ``tokens``, in order."""
    return tuple(canon(t) for t in tokens if is_content(t))


@functools.lru_cache(maxsize=8192)
def sentences(text: str) -> tuple[Sentence, ...]:
    """``text`` cut into sentences (``normalize``'s sentence boundaries), each with its clauses."""
    t = _analyse(text)
    out: list[Sentence] = []
    start = 0
    for i in range(1, len(t.tokens) + 1):
        if i == len(t.tokens) or t.sentence[i] != t.sentence[start]:
            toks = t.tokens[start:i]
            out.append(Sentence(len(out), toks, t.clause[start:i], content_words(toks),
                                t.commas.count(t.sentence[start])))
            start = i
    return tuple(out)


_DETERMINERS = frozenset("a an the your you it this that these those their his her my our its they we i he she there "
                         "any some each every".split())


def lacks_determiners(tokens: Sequence[str], min_words: int = 8) -> bool:
    """A run of at least ``min_words`` words with no article, pronoun or determiner: a keyword list."""
    words = [t for t in tokens if t[0].isalpha()]
    return len(words) >= min_words and not set(words) & _DETERMINERS


def function_share(tokens: Sequence[str]) -> float:
    """Share of tokens that are function words: near 0 for a keyword list, 0.3-0.6 for prose."""
    words = [t for t in tokens if t[0].isalpha()]
    return sum(t in FUNCTION_WORDS for t in words) / len(words) if words else 0.0


def repeated_share(tokens: Sequence[str], n: int = 4) -> float:
    """Share of the word n-grams of ``tokens`` that repeat an earlier one (0 for fluent text)."""
    grams = [tuple(tokens[i:i + n]) for i in range(len(tokens) - n + 1)]
    return 1.0 - len(set(grams)) / len(grams) if grams else 0.0
