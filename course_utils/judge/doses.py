"""Doses and thresholds: what numbers an answer states, per day where a schedule is given,
and whether each agrees with the scenario's dose facts.

A number is a *dose or threshold* when a unit follows it (``500 mg``, ``15 mg/kg``,
``0.4-1.0 mmol/L``, ``30 mL/min``) or a measurement word stands in front (``eGFR 30``,
``INR 2.5``, ``a level of 1.5``). For amounts, a schedule after it (``twice a day``, ``bd``,
``every 8 hours``, ``three times daily``) gives the daily total, so ``600 mg three times a day``
is 1,800 mg a day.

Against the scenario (``verify_doses``) each stated number is

* **correct**: it equals a reference value, lies in a reference range, or (an amount) stays
  within a reference maximum;
* **wrong**: an amount above a reference maximum (per dose or per day), a target or range
  outside the reference range, or a renal threshold the references contradict;
* **unverified**: anything else (the patient's own numbers, durations, a number the knowledge
  base does not cover). Unverified numbers neither earn nor cost anything.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import Decimal
from typing import Iterable, Sequence

from .text import _NUMBER, _Text, _analyse

# unit token -> (canonical unit, family, factor to the family's base unit)
_UNITS: dict[str, tuple[str, str, float]] = {}
for _names, _spec in (
    ("mg milligram milligrams", ("mg", "mass", 1.0)),
    ("g gram grams gm", ("g", "mass", 1000.0)),
    ("mcg microgram micrograms ug", ("mcg", "mass", 1e-3)),
    ("ng nanogram nanograms", ("ng", "mass", 1e-6)),
    ("kg kilogram kilograms", ("kg", "weight", 1.0)),
    ("mmol millimole millimoles", ("mmol", "amount", 1.0)),
    ("mol mole moles", ("mol", "amount", 1000.0)),
    ("meq", ("meq", "meq", 1.0)),
    ("unit units iu", ("units", "units", 1.0)),
    ("ml millilitre millilitres milliliter milliliters", ("ml", "volume", 1.0)),
    ("l litre litres liter liters", ("l", "volume", 1000.0)),
    ("dl", ("dl", "volume", 100.0)),
    ("% percent", ("%", "percent", 1.0)),
    ("min mins minute minutes", ("min", "time", 1 / 60)),
    ("h hr hrs hour hours", ("h", "time", 1.0)),
    ("day days", ("day", "time", 24.0)),
    ("week weeks wk wks", ("week", "time", 168.0)),
    ("month months", ("month", "years", 1 / 12)),
    ("year years yr yrs", ("year", "years", 1.0)),
    ("ms", ("ms", "ms", 1.0)),
    ("dose doses", ("doses", "count:dose", 1.0)),
    ("tablet tablets", ("tablets", "count:tablet", 1.0)),
    ("capsule capsules", ("capsules", "count:capsule", 1.0)),
):
    for _n in _names.split():
        _UNITS[_n] = _spec
# What may follow "/" or "per": kg, m2, a volume, a time, or "dose" (dropped).
_DENOMINATORS: dict[str, tuple[str, str, float]] = {
    k: v for k, v in _UNITS.items() if v[1] in ("weight", "volume", "time")
}
_DENOMINATORS.update({"m2": ("m2", "area", 1.0), "dose": ("", "", 1.0)})
# A daily amount is still an amount: "1 g daily", "1 g a day", "1 g/day" compare as "1 g".
_DOSE_FAMILIES = frozenset({"mass", "amount", "units", "meq", "mass/weight", "units/weight", "amount/weight"})
# Measurement words that make the next number a threshold: "eGFR < 30", "INR of 2-3".
_QUANTITIES: dict[str, str] = {
    "egfr": "renal", "gfr": "renal", "crcl": "renal", "clearance": "renal",
    "inr": "inr",
    "level": "level", "levels": "level", "concentration": "level", "concentrations": "level",
    "potassium": "level", "sodium": "level", "magnesium": "level",
    "qtc": "ms",
}
# A bare threshold ("potassium 5.5") compares with a measured value of these families.
_QUANTITY_COMPATIBLE: dict[str, frozenset[str]] = {
    "renal": frozenset({"renal"}),
    "inr": frozenset({"inr"}),
    "level": frozenset({"level", "amount/volume", "mass/volume"}),
    "ms": frozenset({"ms"}),
}
# Words allowed between a measurement word and its number ("eGFR is less than 30").
_QUANTITY_FILLERS = frozenset(
    "of is was are be < > <= >= = below above under over less more than greater lower higher "
    "falls fall falling drops drop dropped rises rise to between at least around about "
    "approximately approx target range goal value values a an the reaches reach exceeds "
    "exceeding within from serum plasma trough your his her their remains stays".split()
)
_MAX_FILLERS = 4
# Families that are always verifiable: a stated dose of these is either right or wrong.
# Durations, ages, percentages, volumes and body weights are context ("for 3 days", "over
# 65 years") unless the scenario's own references use that family.
SCORED_FAMILIES: frozenset[str] = frozenset(
    {
        "mass", "amount", "units", "meq", "mass/weight", "units/weight", "amount/weight",
        "mass/area", "mass/time", "units/time", "amount/volume", "mass/volume", "renal",
        "inr", "level", "uln",
    }
)


@dataclass(frozen=True)
class Dose:
    """One dose or threshold expression.

    ``text``      normalised display, e.g. ``"500 mg"``, ``"egfr 30"``, ``"0.4-1 mmol/l"``
    ``values``    one value, or two for a range (``0.4-1.0``, ``2 to 3``, ``between 2 and 3``)
    ``unit``      canonical unit (``"mg"``, ``"mg/kg"``, ``"ml/min"``), ``""`` for a bare threshold
    ``family``    what is measured: ``mass``, ``mass/weight``, ``amount/volume``, ``renal`` ...
    ``quantity``  the measurement word in front (``"egfr"``, ``"inr"``, ``"level"``) or ``""``
    ``factor``    multiply ``values`` by it to get the family's base unit (g -> mg: 1000)
    """

    text: str
    values: tuple[float, ...]
    unit: str
    family: str
    quantity: str
    factor: float = 1.0

    @property
    def base(self) -> tuple[float, ...]:
        return tuple(v * self.factor for v in self.values)

    @property
    def key(self) -> tuple:
        """Two statements of the same dose ("1 g", "1000 mg") share a key."""
        vals = self.base if self.unit else self.values
        return (self.family, tuple(round(v, 9) for v in vals))


def _fmt(v: float) -> str:
    return format(Decimal(repr(v)).normalize(), "f")


def _parse_unit(toks: Sequence[str], sent: Sequence[int], j: int) -> tuple[str, str, float, int, bool]:
    """Read a unit starting at token ``j``: ``mg``, ``mg / kg``, ``mg per kg per day``,
    ``ml / min / 1.73 m2``, ``g daily``. Returns (unit, family, factor, next position, daily),
    ``daily`` telling whether an amount was given per day ("1 g daily", "1 g/day")."""
    n = len(toks)
    daily = False
    if j >= n or sent[j] != sent[j - 1]:
        return "", "", 1.0, j, daily
    if toks[j] in ("times", "x"):
        # multiples of the upper limit of normal: "3 times the upper limit of normal", "3 x ULN"
        k = j + 1 + (j + 1 < n and toks[j + 1] == "the")
        if k < n and toks[k] == "uln":
            k += 1
        elif toks[k : k + 2] == ("upper", "limit"):
            k += 2
            k += 2 if toks[k : k + 2] == ("of", "normal") else 0
        else:
            return "", "", 1.0, j, daily
        return "x uln", "uln", 1.0, k, daily
    if toks[j] not in _UNITS:
        return "", "", 1.0, j, daily
    unit, family, factor = _UNITS[toks[j]]
    k = j + 1
    while k < n and sent[k] == sent[j]:
        # "/ kg", "per kg", "/ 1.73 m2", "a day", "daily"
        if toks[k] in ("/", "per") and k + 1 < n:
            nxt = toks[k + 1]
            if nxt == "1.73" and k + 2 < n and toks[k + 2] in ("m2", "m"):
                k += 3  # body-surface normalisation of eGFR: same number, same meaning
                continue
            if nxt == "24" and k + 2 < n and toks[k + 2] in ("h", "hours", "hour", "hr"):
                den = _UNITS["day"]
                k += 3
            elif nxt in _DENOMINATORS:
                den = _DENOMINATORS[nxt]
                k += 2
            else:
                break
        elif toks[k] == "daily" or (toks[k] in ("a", "each", "every") and k + 1 < n and toks[k + 1] == "day"):
            den = _UNITS["day"]
            k += 1 if toks[k] == "daily" else 2
        else:
            break
        d_unit, d_family, d_factor = den
        if not d_unit:
            continue  # "per dose"
        if d_unit == "day" and family in _DOSE_FAMILIES:
            daily = True  # a daily amount: same unit, a schedule of once a day
            continue
        unit = f"{unit}/{d_unit}"
        family = f"{family}/{d_family}"
        factor = factor / d_factor
    if family == "volume/time" and unit.endswith("/min"):
        # ml/min: creatinine clearance, eGFR; expressed in ml/min so "eGFR 30" = "30 ml/min"
        family, factor = "renal", factor / 60.0
    return unit, family, factor, k, daily


def _quantity_before(toks: Sequence[str], sent: Sequence[int], start: int) -> str:
    """The measurement word in front of position ``start`` (skipping up to _MAX_FILLERS fillers)."""
    k, skipped = start - 1, 0
    while k >= 0 and sent[k] == sent[start]:
        if toks[k] in _QUANTITIES:
            return toks[k]
        if toks[k] in _QUANTITY_FILLERS and skipped < _MAX_FILLERS:
            k -= 1
            skipped += 1
            continue
        break
    return ""


_PLURAL_UNITS = {"day": "days", "week": "weeks", "month": "months", "year": "years", "min": "min", "h": "h"}


@dataclass(frozen=True)
class Mention:
    """A dose expression where it stands: its ``dose``, token span ``[start, end)``, sentence,
    and ``per_day``, the administrations per day its schedule gives (None: no schedule)."""

    dose: Dose
    start: int
    end: int
    sentence: int
    per_day: float | None = None

    @property
    def daily_total(self) -> tuple[float, ...] | None:
        """For an amount with a schedule: the amount per day in the base unit (mg)."""
        if self.per_day is None or self.dose.family not in _DOSE_FAMILIES:
            return None
        return tuple(v * self.per_day for v in self.dose.base)


# Schedules: words after an amount -> administrations per day.
_TIMES = {"once": 1.0, "twice": 2.0, "thrice": 3.0, "one": 1.0, "two": 2.0, "three": 3.0, "four": 4.0,
          "1": 1.0, "2": 2.0, "3": 3.0, "4": 4.0, "5": 5.0, "6": 6.0}
_ABBREVIATIONS = {"od": 1.0, "bd": 2.0, "bid": 2.0, "tds": 3.0, "tid": 3.0, "qds": 4.0, "qid": 4.0, "nocte": 1.0}
_PERIOD = {"day": 1.0, "daily": 1.0, "week": 1 / 7, "weekly": 1 / 7}
_SCHEDULE_FILLERS = frozenset("of taken given orally by mouth with food meals a an the each per every in".split())


def _schedule(toks: Sequence[str], sent: Sequence[int], k: int, daily: bool) -> float | None:
    """Administrations per day from the words after an amount (at most 6 tokens on)."""
    n, end = len(toks), min(len(toks), k + 7)
    j = k
    while j < end and sent[j] == sent[k - 1]:
        t = toks[j]
        if t in _ABBREVIATIONS:
            return _ABBREVIATIONS[t]
        if t in ("once", "twice", "thrice") or (t in _TIMES and j + 1 < n and toks[j + 1] == "times"):
            times = _TIMES[t]
            rest = toks[j + 1 + (t not in ("once", "twice", "thrice")): j + 4]
            period = next((_PERIOD[w] for w in rest if w in _PERIOD), 1.0)
            return times * period
        if t == "every" and j + 2 < n and _NUMBER.fullmatch(toks[j + 1]):
            hours = float(toks[j + 1])
            unit_at = j + 2 + (toks[j + 2] in ("to", "-") and j + 4 < n) * 2
            if toks[unit_at] in ("h", "hr", "hrs", "hour", "hours") and hours > 0:
                return 24.0 / hours
        if t in ("weekly",) or (t == "week" and j > k and toks[j - 1] in ("a", "per", "each", "every")):
            return 1 / 7
        if t in _PERIOD or t in ("at", "night", "morning"):
            return 1.0
        if t not in _SCHEDULE_FILLERS and not _NUMBER.fullmatch(t):
            break
        j += 1
    for j in range(k, n - 2):                # "15 mg/kg each time ..., as often as every 2 hours"
        if sent[j] != sent[k - 1]:
            break
        if toks[j] == "every" and _NUMBER.fullmatch(toks[j + 1]) \
                and toks[j + 2] in ("h", "hr", "hrs", "hour", "hours") and float(toks[j + 1]) > 0:
            return 24.0 / float(toks[j + 1])
    return 1.0 if daily else None


def _mentions(text: _Text) -> list[Mention]:
    """Every dose expression of ``text`` with its span and schedule."""
    toks, sent = text.tokens, text.sentence
    n = len(toks)
    out: list[Mention] = []
    i = 0
    while i < n:
        if not _NUMBER.fullmatch(toks[i]):
            i += 1
            continue
        start, values, j = i, [float(toks[i])], i + 1
        # a range: "2 - 3", "2 to 3", "between 2 and 3"
        if (
            j + 1 < n
            and sent[j + 1] == sent[start]
            and _NUMBER.fullmatch(toks[j + 1])
            and (toks[j] in ("-", "to") or (toks[j] == "and" and "between" in toks[max(0, start - 2) : start]))
        ):
            values.append(float(toks[j + 1]))
            j += 2
        unit, family, factor, k, daily = _parse_unit(toks, sent, j)
        # "150 mg to 600 mg": one range
        if unit and len(values) == 1 and k + 2 < n and toks[k] in ("to", "-") and _NUMBER.fullmatch(toks[k + 1]) \
                and toks[k + 2] == toks[j] and sent[k + 2] == sent[start]:
            values.append(float(toks[k + 1]))
            unit, family, factor, k, daily = _parse_unit(toks, sent, k + 2)
        quantity = _quantity_before(toks, sent, start)
        if unit:
            pass
        elif quantity:
            family, factor = _QUANTITIES[quantity], 1.0
        else:
            i = j
            continue
        number = "-".join(_fmt(v) for v in values)
        written = _PLURAL_UNITS.get(unit, unit) if values != [1.0] else unit
        shown = " ".join(x for x in (quantity, number, written) if x)
        dose = Dose(shown, tuple(values), unit, family, quantity, factor)
        end = k if unit else j
        per_day = (_schedule(toks, sent, end, daily) if family in _DOSE_FAMILIES and end < n
                   else (1.0 if daily else None))
        out.append(Mention(dose, start, end, sent[start], per_day))
        i = end
    return out


def extract_doses(text: str) -> list[Dose]:
    """Every dose or threshold expression in ``text``, in order.

    A dose is a number (or a range ``a-b``, ``a to b``, ``between a and b``, ``150 mg to 600 mg``)
    followed by a unit (``mg``, ``g``, ``mcg``, ``units``, ``mmol``, ``ml``, ``%``, durations,
    composite units like ``mg/kg``, ``mg per kg per day``, ``mmol/L``, ``mL/min/1.73 m2``), or a
    bare number after a measurement word (eGFR, CrCl, clearance, INR, level, concentration,
    potassium, sodium, magnesium, QTc) with at most four words such as "is less than" in between.
    Mass units are converted for comparison (1 g = 1000 mg). Numbers without a unit or a
    measurement word ("2 tablets", "type 2 diabetes") are not doses.
    """
    return [m.dose for m in _mentions(_analyse(text))]


def _value_in(v: float, d: Dose, refs: Iterable[Dose]) -> bool:
    """Whether the single value ``v`` (of dose ``d``) equals a value or a range end of a compatible reference."""
    for r in refs:
        if not _compatible(d, r):
            continue
        if d.unit and r.unit:
            if any(math.isclose(v * d.factor, x, rel_tol=1e-9) for x in r.base):
                return True
        elif any(math.isclose(v, x, rel_tol=1e-9) for x in r.values):
            return True
    return False


def _compatible(a: Dose, b: Dose) -> bool:
    fa = {a.family} if a.unit else _QUANTITY_COMPATIBLE.get(a.family, frozenset({a.family}))
    fb = {b.family} if b.unit else _QUANTITY_COMPATIBLE.get(b.family, frozenset({b.family}))
    return bool(set(fa) & set(fb))


def _matches(d: Dose, refs: Sequence[Dose]) -> bool:
    """A single value is right if it equals a reference value or a reference range's end
    ("below 1.0 mmol/L" against 0.4-1.0 mmol/L); a range is right if it equals a reference
    range, or both of its ends are right ("INR 2-3" against INR 2 and INR 3)."""
    if len(d.values) == 1:
        return _value_in(d.values[0], d, refs)
    for r in refs:
        if len(r.values) == 2 and _compatible(d, r):
            a, b = (d.base, r.base) if (d.unit and r.unit) else (d.values, r.values)
            if all(math.isclose(x, y, rel_tol=1e-9) for x, y in zip(a, b)):
                return True
    return all(_value_in(v, d, refs) for v in d.values)


# --------------------------------------------------------------------------------------------
# Checking an answer's numbers against the scenario's
# --------------------------------------------------------------------------------------------

_AMOUNT_FAMILIES = _DOSE_FAMILIES | {"mass/area"}
_LEVEL_FAMILIES = frozenset({"inr", "level", "amount/volume", "mass/volume", "uln"})
# Words around a number that make it a limit, a target, or the thing being rejected.
_MAX_CUES = ("maximum", "max", "no more than", "not more than", "not exceed", "up to", "at most", "limit",
             "should not exceed", "never more than")
_TARGET_CUES = ("target", "aim", "range", "between", "kept", "keep", "goal", "acceptable", "usual", "therapeutic",
                "should be", "under", "below", "less than")
_REJECT_AFTER = ("too high", "too much", "too large", "too big", "excessive", "is above", "is over", "exceeds",
                 "is more than", "overdose", "is dangerous", "is unsafe", "is toxic", "is too", "more than recommended",
                 "higher than recommended", "above the maximum")
_REJECT_BEFORE = ("instead of", "rather than", "not", "never", "above", "over", "more than", "exceed", "exceeding",
                  "beyond")
OVERDOSE_FACTOR = 1.5   # an amount above 1.5x every reference amount of its kind is an overdose


def _has(words: Sequence[str], cues: Sequence[str]) -> bool:
    text = " " + " ".join(words) + " "
    return any(f" {c} " in text for c in cues)


@dataclass(frozen=True)
class DoseCheck:
    """What the judge made of one stated number: ``status`` correct / wrong / unverified, and why."""

    text: str
    status: str
    reason: str


def _daily_reference(r: Mention, text: _Text) -> bool:
    words = [w for w, s in zip(text.tokens, text.sentence) if s == r.sentence]
    return r.per_day is not None or _has(words, ("a day", "daily", "per day", "each day", "in 24 h", "a 24 h"))


def _context(m: Mention, text: _Text) -> tuple[list[str], list[str], list[str]]:
    """(the sentence's words, three words before the number, ten after it)."""
    words = [w for w, s in zip(text.tokens, text.sentence) if s == m.sentence]
    at = m.start - next(i for i, s in enumerate(text.sentence) if s == m.sentence)
    return words, words[max(0, at - 3):at], words[at + (m.end - m.start):at + (m.end - m.start) + 10]


def is_rejected(m: Mention, text: _Text) -> bool:
    """Whether the text states the number as what not to do ("1800 mg a day is too high",
    "instead of 1 g twice a day", "never more than 4 g")."""
    _, before, after = _context(m, text)
    return _has(after, _REJECT_AFTER) or _has(before, _REJECT_BEFORE)


def check_mention(m: Mention, text: _Text, refs: Sequence[tuple[Mention, _Text]], given: Sequence[Mention],
                  n_primary: int | None = None) -> DoseCheck:
    """Check one stated number ``m`` (of the answer ``text``) against the references; a number
    given as a target or range is checked against the first ``n_primary`` references only (the
    dose facts and the expert answer; notes mention other indications' targets)."""
    d = m.dose
    words, _, _ = _context(m, text)
    rejected = is_rejected(m, text)
    if d.family in _LEVEL_FAMILIES and _has(words, _TARGET_CUES) and n_primary is not None:
        refs = refs[:n_primary]
    compatible = [(r, t) for r, t in refs if _compatible(d, r.dose)]
    too_often = _check_schedule(m, refs)
    if too_often is not None:
        return too_often
    if any(_compatible(d, g.dose) and _matches(d, [g.dose]) for g in given) \
            and not _matches(d, [r.dose for r, _ in compatible]):
        return DoseCheck(d.text, "unverified", "the patient's own number")
    if not compatible:
        return DoseCheck(d.text, "unverified", "no reference of this kind")
    if rejected:
        return DoseCheck(d.text, "unverified", "stated as what not to do")
    if d.family in _AMOUNT_FAMILIES and m.daily_total is not None:
        amount = _check_amount(m, compatible)        # "1000 mg three times a day" is 3 g a day
        if amount.status == "wrong":
            return amount
    if _matches(d, [r.dose for r, _ in compatible]):
        return DoseCheck(d.text, "correct", "equals a reference value")
    if d.family in _AMOUNT_FAMILIES:
        return _check_amount(m, compatible)
    if d.family in _LEVEL_FAMILIES and (_has(words, _TARGET_CUES)):
        lo = min(v for r, _ in compatible for v in r.dose.base)
        hi = max(v for r, _ in compatible for v in r.dose.base)
        inside = all(lo - 1e-9 <= v <= hi + 1e-9 for v in d.base)
        return DoseCheck(d.text, "correct" if inside else "wrong",
                         "inside the reference range" if inside else f"outside the references ({_fmt(lo)}-{_fmt(hi)})")
    return DoseCheck(d.text, "unverified", "no reference says this number")


def _check_schedule(m: Mention, refs: Sequence[tuple[Mention, _Text]]) -> DoseCheck | None:
    """An amount given more often than a reference allows ("no more than 4 doses in 24 hours")."""
    if m.per_day is None or m.dose.family not in _AMOUNT_FAMILIES:
        return None
    for r, _ in refs:
        if r.dose.family == "count:dose" and m.per_day > max(r.dose.values) + 1e-9:
            return DoseCheck(m.dose.text, "wrong", f"{_fmt(m.per_day)} doses a day, more than the "
                             f"{_fmt(max(r.dose.values))} of the references")
    return None


def _sentence_words(r: Mention, t: _Text) -> list[str]:
    return [w for w, s in zip(t.tokens, t.sentence) if s == r.sentence]


def _check_amount(m: Mention, compatible: Sequence[tuple[Mention, _Text]]) -> DoseCheck:
    """An amount against the reference amounts: its daily total against the daily limits, its
    single dose against the per-dose limits, and against every reference for a gross overdose.
    A total that equals a reference ("40 mg daily" where 40 mg is one of the maxima) is right."""
    d = m.dose
    per_dose = max(d.base)
    daily = max(m.daily_total) if m.daily_total else None
    daily_refs = [(r, t) for r, t in compatible if _daily_reference(r, t)]
    if daily is not None and any(math.isclose(daily, v, rel_tol=1e-9) for r, _ in daily_refs for v in r.dose.base):
        return DoseCheck(d.text, "correct", "its daily total equals a reference")
    caps = [max(r.dose.base) for r, t in daily_refs
            if len(r.dose.values) == 2 or _has(_sentence_words(r, t), _MAX_CUES)]
    if daily is not None and caps and daily > max(caps) * (1 + 1e-9):
        return DoseCheck(d.text, "wrong", f"{_fmt(daily)} a day is above the {_fmt(max(caps))} a day of the references")
    dose_caps = [max(r.dose.base) for r, t in compatible if (r, t) not in daily_refs
                 and _has(_sentence_words(r, t), _MAX_CUES + ("not exceed", "should not"))]
    if dose_caps and per_dose > max(dose_caps) * (1 + 1e-9):
        return DoseCheck(d.text, "wrong", f"above the {_fmt(max(dose_caps))} per dose of the references")
    largest = max(v for r, _ in compatible for v in r.dose.base)
    if per_dose > OVERDOSE_FACTOR * largest or (daily is not None and daily_refs and daily > OVERDOSE_FACTOR * largest):
        return DoseCheck(d.text, "wrong", f"more than {OVERDOSE_FACTOR:g}x any reference amount ({_fmt(largest)})")
    return DoseCheck(d.text, "correct" if daily is not None or per_dose <= largest else "unverified",
                     "within the reference amounts")
