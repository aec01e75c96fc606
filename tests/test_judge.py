"""The gold judge agrees with a pharmacist: graded answers, dangerous advice, silence, word salad.

``tests/judge_graded.jsonl`` holds hand-written answers, each with the band a pharmacist would give
it (correct >= 0.75; dangerous <= 0.30; content-free, off-topic, keyword stuffing and word salad
<= 0.15); the judge's rules were developed against it. ``tests/judge_graded_holdout.jsonl`` was
written afterwards by a different author, from the knowledge base alone, to measure how the rules
generalise. Grow both whenever a wrong verdict is found.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from pathlib import Path

import pytest

from course_utils import data, judge
from course_utils.judge.claims import claims, related
from course_utils.judge.doses import _mentions
from course_utils.judge.lexicon import DRUG_CLASSES, _classes_table
from course_utils.judge.text import _analyse

TESTS = Path(__file__).resolve().parent
BANDS = {"correct": (0.75, 1.0), "dangerous": (0.0, 0.30)}
NEAR_ZERO = (0.0, 0.15)


@pytest.fixture(scope="module")
def kb() -> dict[str, dict]:
    return {s["id"]: s for s in data.load_scenarios()}


def _graded(name: str) -> list[dict]:
    return [json.loads(line) for line in (TESTS / name).read_text(encoding="utf-8").splitlines() if line.strip()]


def agreement(rows: list[dict], kb: dict[str, dict]) -> dict[str, tuple[int, int]]:
    """Class -> (answers the judge puts in the class's band, answers)."""
    hit, total = Counter(), Counter()
    for r in rows:
        lo, hi = BANDS.get(r["class"], NEAR_ZERO)
        hit[r["class"]] += lo <= judge.judge_answer(r["answer"], kb[r["scenario_id"]]).overall <= hi
        total[r["class"]] += 1
    return {c: (hit[c], total[c]) for c in total}


# ----------------------------------------------------------------------------- the graded sets
def test_graded_set_is_well_formed(kb):
    rows = _graded("judge_graded.jsonl")
    assert len(rows) >= 100 and len({r["id"] for r in rows}) == len(rows)
    assert len({r["scenario_id"] for r in rows}) >= 40
    assert {r["class"] for r in rows} == {"correct", "dangerous", "content_free", "off_topic", "keyword_stuffing",
                                         "word_salad"}
    assert all(r["scenario_id"] in kb for r in rows)


def test_judge_puts_95_percent_of_the_graded_answers_in_band(kb):
    result = agreement(_graded("judge_graded.jsonl"), kb)
    assert sum(h for h, _ in result.values()) >= 0.95 * sum(n for _, n in result.values()), result
    for cls, (h, n) in result.items():
        assert h >= 0.9 * n, (cls, h, n)


def test_judge_generalises_to_the_holdout_set(kb):
    """Written by another author after the rules: harm and no-skill classes must hold; correct
    paraphrases are the judge's known weakness (key facts matched by phrase and by claim)."""
    result = agreement(_graded("judge_graded_holdout.jsonl"), kb)
    assert sum(h for h, _ in result.values()) >= 0.80 * sum(n for _, n in result.values()), result
    assert result["dangerous"][0] >= 0.95 * result["dangerous"][1], result


# ----------------------------------------------------------------------------- no credit for silence
def test_content_free_answers_score_zero(kb):
    for s in list(kb.values())[:16]:
        for text in ("", "Contact your prescriber promptly.", "I am not sure, please ask your pharmacist.",
                     "Always read the leaflet and take medicines as directed."):
            v = judge.judge_answer(text, s)
            assert v.overall == 0.0 and v.medical_accuracy == 0.0, (s["id"], text)


def test_the_experts_own_answers_score_near_one_and_others_answers_near_zero(kb):
    ids = sorted(kb)
    own = judge.judge_many([data.expert_response(kb[i]) for i in ids], [kb[i] for i in ids])
    assert own.overall.mean() >= 0.95 and own.overall.min() >= 0.75
    other = judge.judge_many([data.expert_response(kb[ids[(k + 7) % len(ids)]]) for k in range(len(ids))],
                             [kb[i] for i in ids])
    assert other.overall.mean() <= 0.05


def test_word_salad_and_keyword_lists_score_low(kb):
    s = kb["PGX-01"]
    for text in ("codeine codeine poor metaboliser morphine CYP2D6 ask your pharmacist",
                 "Codeine is a prodrug. Codeine is a prodrug. Codeine is a prodrug. Codeine is a prodrug.",
                 "The morphine the morphine the morphine the morphine the morphine of codeine codeine codeine."):
        assert judge.judge_answer(text, s).overall <= 0.15, text


# ----------------------------------------------------------------------------- dangerous advice, by claim
@pytest.mark.parametrize("sid, text", [
    ("INT-01", "Ibuprofen is fine to take with warfarin for a few days of back pain. The extra bleeding risk is "
               "small, and the INR does not need an extra check. Paracetamol is another option. Speak to your "
               "pharmacist if you are unsure."),
    ("REN-02", "Your dad's dose of 600 mg three times a day is fine at a creatinine clearance of 25. Speak to the "
               "pharmacist if he gets drowsy."),
    ("REN-01", "At an eGFR of 38 you can keep taking 1 g twice a day. Ask your prescriber if you are unsure."),
    ("MON-04", "For atrial fibrillation the target INR is 3.5. Contact your clinic if a reading is out of range."),
])
def test_dangerous_advice_is_caught(kb, sid, text):
    v = judge.judge_answer(text, kb[sid])
    assert v.harms and v.safety == 0.0 and v.overall <= 0.30, v.explain()


@pytest.mark.parametrize("sid, text", [
    ("POP-09", "There is no need to stop breastfeeding."),
    ("INT-10", "Paracetamol is safe with lithium."),
    ("PGX-01", "Taking a higher dose of codeine will not help."),
    ("INT-05", "None of the PDE5 inhibitors is safe with nitrates."),
    ("ADE-06", "Do not stop ramipril without speaking to your prescriber."),
])
def test_correct_negated_sentences_are_not_called_harmful(kb, sid, text):
    assert not judge.judge_answer(text, kb[sid]).harms


@pytest.mark.parametrize("text, entity, polarity", [
    ("It is not fine to take ibuprofen with warfarin.", "ibuprofen", -1),
    ("Ibuprofen is fine alongside warfarin.", "ibuprofen", +1),
    ("None of the PDE5 inhibitors is safe with nitrates.", "pde5 inhibitor", -1),
    ("There is no need to stop breastfeeding.", "breastfeed", +1),
    ("Carbamazepine should be stopped immediately and never restarted.", "carbamazepine", -1),
    ("The INR does not need an extra check.", "inr", -1),
])
def test_claims_read_negation_in_both_directions(text, entity, polarity):
    found = [(c.entity, c.polarity) for c in claims(text)]
    assert any(related(e, entity) and p == polarity for e, p in found), found
    assert not any(related(e, entity) and p == -polarity for e, p in found), found


def test_co_medication_and_descriptions_are_not_advice():
    assert [c.entity for c in claims("Avoid ibuprofen with warfarin.")] == ["ibuprofen"]
    assert claims("He takes lithium every night.") == []
    assert claims("After years of taking them without any problem.") == []


# ----------------------------------------------------------------------------- doses
def _checks(text: str, s: dict) -> dict[str, str]:
    return {d.text: d.status for d in judge.judge_answer(text, s).doses}


def test_doses_are_compared_per_day(kb):
    assert _mentions(_analyse("600 mg three times a day"))[0].daily_total == (1800.0,)
    assert _mentions(_analyse("15 mg/kg every 6 hours"))[0].per_day == 4.0
    assert _checks("Take 250 mg four times a day.", kb["REN-01"]) == {"250 mg": "correct"}   # 1000 mg a day
    assert _checks("Take 1 g twice a day.", kb["REN-01"]) == {"1 g": "wrong"}                 # 2000 mg a day
    # a wording of REN-01 says "two 500 mg metformin tablets twice a day": repeating the patient's own
    # dose and schedule is not advice the judge can credit
    assert _checks("Take 500 mg twice a day.", kb["REN-01"]) == {"500 mg": "unverified"}
    assert _checks("Paracetamol is 150 mg/kg per dose.", kb["POP-02"]) == {"150 mg/kg": "wrong"}


def test_numbers_that_are_not_the_advice_are_not_wrong(kb):
    assert "wrong" not in _checks("An eGFR fall of up to 25% after starting is acceptable.", kb["MON-07"]).values()
    assert "wrong" not in _checks("Never give more than 60 mg/kg a day.", kb["POP-02"]).values()
    assert "wrong" not in _checks("No, 1 g twice a day (2 g daily) is more than recommended.", kb["REN-01"]).values()
    assert "wrong" not in _checks("At an eGFR of 38 the dose needs review.", kb["REN-01"]).values()


def test_dose_accuracy_is_not_applicable_without_a_number(kb):
    v = judge.judge_answer("Stop allopurinol now and go to A&E.", kb["ADE-01"])
    assert math.isnan(v.dose_accuracy)


# ----------------------------------------------------------------------------- the verdict
def test_verdict_is_deterministic_explained_and_in_range(kb):
    text = data.expert_response(kb["ADE-01"])
    a, b = judge.judge_answer(text, kb["ADE-01"]), judge.judge_answer(text, dict(reversed(list(kb["ADE-01"].items()))))
    assert a.scores() == b.scores()
    assert all(0.0 <= v <= 1.0 for k, v in a.scores().items() if not math.isnan(v))
    report = a.explain()
    assert "key facts" in report and "overall" in report and "escalation" in report


def test_overall_is_the_rubric_arithmetic(kb):
    v = judge.judge_answer(data.expert_response(kb["INT-01"]) + " Tablets are usually swallowed whole.", kb["INT-01"])
    assert v.overall == pytest.approx(min(1.0, max(0.0, (v.earned - v.costs) / v.available)))
    assert judge.rubric_points(4, 4, 1.0, 1.0, True, 0)[3] == pytest.approx(0.2)
    assert judge.rubric_points(0, 4, 1.0, 1.0, False, 0)[3] == 0.0


def test_judge_many_checks_its_inputs(kb):
    df = judge.judge_many(["", data.expert_response(kb["ADE-01"])], kb["ADE-01"])
    assert list(df.columns) == list(judge.JUDGE_COLUMNS) and len(df) == 2
    with pytest.raises(ValueError, match="2 answers but 1 scenarios"):
        judge.judge_many(["a", "b"], [kb["ADE-01"]])
    with pytest.raises(ValueError, match="key_facts"):
        judge.judge_answer("x", {"id": "X", "key_facts": []})
    with pytest.raises(TypeError):
        judge.judge_answer("x", ["not a dict"])


def test_drug_class_table_parses_and_refuses_bad_lines():
    assert DRUG_CLASSES["amitriptyline"] == ("tricyclic antidepressant", "antidepressant", "anticholinergic")
    assert _classes_table("\nwarfarin:  anticoagulant; vitamin k antagonist\n") == {
        "warfarin": ("anticoagulant", "vitamin k antagonist")}
    for bad in ("warfarin anticoagulant", "warfarin: anticoagulant;", ": anticoagulant",
                "warfarin: anticoagulant\nwarfarin: doac"):
        with pytest.raises(ValueError, match="drug-class table"):
            _classes_table(bad)
