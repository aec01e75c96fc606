"""A word-level tokenizer that keeps drug names, doses and gene variants readable.

The model of the course reads words, not sub-word pieces, so that a learner can print the
tokens of any sentence and recognise them: ``"15 mg/kg"`` is two tokens, ``"HLA-B*57:01"``
one, ``"eGFR < 30"`` three.

Symbols
-------
=============  ==============================================================
V              vocabulary size (``vocab_size``), special tokens included
id             integer position of a token in the vocabulary, 0 ≤ id < V
<pad>  = 0     padding (fills short sequences in a batch; masked out of losses)
<bos>  = 1     beginning of a sequence
<eos>  = 2     end of a sequence (generation stops here)
<unk>  = 3     any word not in the vocabulary
<q>    = 4     marks the question in an SFT example:  <q> question <a> answer <eos>
<a>    = 5     marks the start of the answer
=============  ==============================================================

Pre-tokenisation (``tokenize``) splits on whitespace and punctuation but keeps intact:
decimals and ranges (``2.5``, ``0.4-1.0``, ``30-45``, ``1,000``), units
(``mg/kg``, ``mmol/L``, ``mL/min/1.73``), hyphenated words and names (``Stevens-Johnson``),
genes, alleles and variants (``CYP2D6``, ``HLA-B*57:01``, ``*4``, ``CYP2C19*2/*3``,
``m.1555A>G``), ions (``K+``, ``Ca2+``), contractions (``patient's``), drug-class
suffixes (``-pril``). Comparison signs (``<``, ``>``, ``≤``,
``≥``, ``<=``, ``>=``) and every other punctuation mark are tokens of their own. Case is
kept. Special tokens written in the text (``"<q> ... <a> ..."``) are recognised.

``decode`` joins tokens with single spaces, attaches closing punctuation (``. , ; : ? ! ) %``)
to the word before it and opening brackets to the word after, and alternates straight
quotes between opening and closing, so ``decode(encode(s)) == s`` for text written in the
usual way: single spaces, a space on both sides of comparison signs, none inside brackets.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path

__all__ = ["VocabularyTokenizer", "SPECIAL_TOKENS"]

SPECIAL_TOKENS: tuple[str, ...] = ("<pad>", "<bos>", "<eos>", "<unk>", "<q>", "<a>")

# One alternative per kind of token, tried in this order.
_SPECIAL = "|".join(re.escape(t) for t in SPECIAL_TOKENS)
_VARIANT = r"[cgmnr]\.\d+[ACGTU]>[ACGTU]"                  # nucleotide change, e.g. m.1555A>G
_JOINER = r"(?:[-–/*:.'’&]|(?<=\d),(?=\d))"                 # inside a word: 0.4-1.0, mg/kg, *57:01, 1,000
_PART = r"[*°]?\w+"                                          # a run of letters/digits, maybe a star allele
_SUFFIX = r"(?<![^\s(\[\"'])-(?=[^\W\d_])"                 # a word-start hyphen: the suffix -pril
_CHARGE = r"(?:\d?[+-](?![\w-]))?"                         # an ion's charge: K+, Ca2+ (not 2+2)
_WORD = rf"(?:{_SUFFIX})?{_PART}(?:{_JOINER}{_PART})*{_CHARGE}"
_COMPARISON = r"<=|>=|[<>≤≥]"
_PATTERN = re.compile(rf"{_SPECIAL}|{_VARIANT}|{_WORD}|{_COMPARISON}|\S")

_NO_SPACE_BEFORE = frozenset(".,;:!?)]}%…”’")
_NO_SPACE_AFTER = frozenset("([{“‘")
_QUOTES = frozenset("\"'")


class VocabularyTokenizer:
    """Word-level tokenizer with a vocabulary built from a corpus (``fit``).

    ``id_to_token[i]`` is the token with id i and ``token_to_id`` the inverse map; ids 0..5
    are the special tokens (``pad_id``, ``bos_id``, ``eos_id``, ``unk_id``, ``q_id``,
    ``a_id``), then the corpus words from the most to the least frequent.
    """

    pad_id, bos_id, eos_id, unk_id, q_id, a_id = range(6)
    special_tokens = SPECIAL_TOKENS

    def __init__(self, tokens: Sequence[str], counts: dict[str, int] | None = None) -> None:
        tokens = list(tokens)
        if tuple(tokens[: len(SPECIAL_TOKENS)]) != SPECIAL_TOKENS:
            raise ValueError(f"the vocabulary must start with the special tokens {SPECIAL_TOKENS}")
        if len(set(tokens)) != len(tokens):
            raise ValueError("the vocabulary contains a token twice")
        self.id_to_token: list[str] = tokens
        self.token_to_id: dict[str, int] = {t: i for i, t in enumerate(tokens)}
        self.counts: dict[str, int] = dict(counts or {})

    # ------------------------------------------------------------------ building

    @staticmethod
    def tokenize(text: str) -> list[str]:
        """Split ``text`` into word-level tokens (strings), before any vocabulary lookup."""
        return _PATTERN.findall(text)

    @classmethod
    def fit(cls, texts: Iterable[str], min_count: int = 1, max_size: int | None = None) -> "VocabularyTokenizer":
        """Build the vocabulary from ``texts``.

        Keeps every token seen at least ``min_count`` times, most frequent first (ties in
        alphabetical order, so the result is deterministic). ``max_size`` caps the total
        vocabulary size V, the 6 special tokens included.
        """
        if min_count < 1:
            raise ValueError(f"min_count must be >= 1, got {min_count}")
        if max_size is not None and max_size < len(SPECIAL_TOKENS):
            raise ValueError(f"max_size must be >= {len(SPECIAL_TOKENS)} (the special tokens), got {max_size}")
        if isinstance(texts, str):
            texts = [texts]
        counts = Counter(tok for text in texts for tok in cls.tokenize(text) if tok not in SPECIAL_TOKENS)
        words = sorted((w for w, c in counts.items() if c >= min_count), key=lambda w: (-counts[w], w))
        if max_size is not None:
            words = words[: max_size - len(SPECIAL_TOKENS)]
        return cls(list(SPECIAL_TOKENS) + words, {w: counts[w] for w in words})

    @property
    def vocab_size(self) -> int:
        """V, the number of token ids (special tokens included)."""
        return len(self.id_to_token)

    def __len__(self) -> int:
        return self.vocab_size

    def __repr__(self) -> str:
        return f"VocabularyTokenizer(vocab_size={self.vocab_size})"

    # ------------------------------------------------------------------ text <-> ids

    def encode(self, text: str, add_bos: bool = False, add_eos: bool = False) -> list[int]:
        """Token ids of ``text``; words not in the vocabulary become ``unk_id``."""
        ids = [self.token_to_id.get(tok, self.unk_id) for tok in self.tokenize(text)]
        return ([self.bos_id] if add_bos else []) + ids + ([self.eos_id] if add_eos else [])

    def decode(self, ids: Iterable[int], skip_special: bool = True) -> str:
        """Text of ``ids``: tokens joined by spaces, punctuation attached (see the module doc).

        ``skip_special`` drops ``<pad>``, ``<bos>``, ``<eos>``, ``<q>`` and ``<a>``; ``<unk>``
        is always shown, since it stands for a real word.
        """
        skip = {self.pad_id, self.bos_id, self.eos_id, self.q_id, self.a_id} if skip_special else set()
        tokens = []
        for i in ids:
            i = int(i)
            if not 0 <= i < self.vocab_size:
                raise ValueError(f"token id {i} outside the vocabulary [0, {self.vocab_size})")
            if i not in skip:
                tokens.append(self.id_to_token[i])
        return self.join(tokens)

    @staticmethod
    def join(tokens: Iterable[str]) -> str:
        """Inverse of ``tokenize`` for usually written text."""
        out: list[str] = []
        glue = True                      # no space before the next token
        quote_open = {q: False for q in _QUOTES}
        for tok in tokens:
            closing = False
            if tok in _QUOTES:
                closing = quote_open[tok]
                quote_open[tok] = not closing
            if not (glue or closing or tok in _NO_SPACE_BEFORE):
                out.append(" ")
            out.append(tok)
            glue = tok in _NO_SPACE_AFTER or (tok in _QUOTES and not closing)
        return "".join(out)

    # ------------------------------------------------------------------ files

    def save(self, path: str | Path) -> None:
        """Write the vocabulary (ids in order) and the corpus counts as JSON (UTF-8)."""
        data = {"format": "vocabulary-tokenizer-1", "tokens": self.id_to_token, "counts": self.counts}
        Path(path).write_text(json.dumps(data, ensure_ascii=False, indent=0) + "\n", encoding="utf-8")

    @classmethod
    def load(cls, path: str | Path) -> "VocabularyTokenizer":
        """Read a tokenizer written by ``save``."""
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        if data.get("format") != "vocabulary-tokenizer-1":
            raise ValueError(f"{path} is not a saved VocabularyTokenizer")
        return cls(data["tokens"], data.get("counts"))
