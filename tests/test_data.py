"""Tests for course_utils.data: validation errors, the builder, and the committed datasets."""

from __future__ import annotations

import copy
import json
import random
from collections import Counter
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator

from course_utils import data as D
from course_utils.data import record_schemas as RS
from course_utils.data import schema as S
from course_utils.paths import DATA_DIR

# --------------------------------------------------------------------------------------------
# A small hand-written knowledge base, one scenario per category (for the loader tests)
# --------------------------------------------------------------------------------------------

FIXTURE = [
    {
        "id": "REN-01", "category": "renal_dosing", "title": "Metformin with eGFR 40",
        "question": "My kidney function has dropped to an eGFR of 40. Can I keep taking metformin 2 g a day?",
        "variants": [
            "Does metformin need a dose change when the eGFR is 40?",
            "Patient on metformin 1 g twice daily, eGFR now 40. What should happen to the dose?",
            "Is the full metformin dose still fine with moderately reduced kidney function?",
        ],
        "rl_questions": [
            "Metformin 2 g daily and the latest blood test puts my kidneys at 40: does anything change?",
            "For a man whose eGFR has fallen to 40 on metformin 1 g twice a day, is a lower dose needed?",
        ],
        "answer": "Metformin is cleared by the kidneys, so the dose is reduced when the eGFR is between 30 and 44. "
                  "The usual maximum at this level is 1000 mg a day. "
                  "Kidney function should be rechecked every 3 to 6 months.",
        "escalation": "Ask your prescriber to review the dose, and stop metformin and seek urgent care if you become "
                      "very unwell with vomiting or breathlessness.",
        "notes": [
            "Metformin is excreted unchanged by the kidneys.",
            "Accumulation of metformin raises the risk of lactic acidosis.",
            "Metformin is contraindicated when the eGFR is below 30 mL/min/1.73 m2.",
        ],
        "key_facts": [
            {"fact": "dose reduction at eGFR 30-44", "accept": ["dose is reduced", "reduce the dose", "1000 mg"]},
            {"fact": "regular kidney function checks", "accept": ["rechecked", "kidney function should be"]},
        ],
        "unsafe_claims": [{"claim": "Metformin can be continued at the full dose whatever the kidney function.",
                           "patterns": ["full dose whatever", "whatever the kidney function"]}],
        "dose_facts": [{"drug": "metformin", "dose": "1000 mg",
                        "statement": "With an eGFR of 30-44 the maximum dose of metformin is 1000 mg a day."}],
        "source": "Metformin SmPC section 4.2 (renal impairment).",
    },
    {
        "id": "INT-01", "category": "drug_interactions", "title": "Warfarin with ibuprofen",
        "question": "I take warfarin. Can I take ibuprofen for my back pain?",
        "variants": [
            "Is it safe to use ibuprofen while on warfarin?",
            "My patient on warfarin wants an NSAID for back pain. Any concerns?",
            "Can someone who takes warfarin also take ibuprofen for pain?",
        ],
        "rl_questions": [
            "My mum is on warfarin and her back hurts. Could she use Nurofen?",
            "Would an anti-inflammatory painkiller interact with a patient's warfarin?",
        ],
        "answer": "Ibuprofen and other NSAIDs increase the risk of bleeding when taken with warfarin. "
                  "NSAIDs irritate the stomach lining and affect platelets, "
                  "so gastrointestinal bleeding is the main danger. "
                  "Paracetamol at the usual dose is the preferred painkiller, "
                  "and the INR should be checked if pain relief is used regularly.",
        "escalation": "Speak to your prescriber or anticoagulation clinic before taking any NSAID, "
                      "and seek urgent care for black stools or vomiting blood.",
        "notes": [
            "Warfarin is a vitamin K antagonist used to prevent clots.",
            "NSAIDs such as ibuprofen and naproxen inhibit platelet function and can cause stomach ulcers.",
            "The combination of warfarin and an NSAID raises the risk of gastrointestinal bleeding.",
        ],
        "key_facts": [
            {"fact": "NSAIDs with warfarin increase bleeding risk", "accept": ["risk of bleeding", "bleeding risk"]},
            {"fact": "paracetamol is the preferred painkiller", "accept": ["paracetamol", "acetaminophen"]},
            {"fact": "INR monitoring", "accept": ["inr"]},
        ],
        "unsafe_claims": [{"claim": "Ibuprofen is safe to take with warfarin.",
                           "patterns": ["ibuprofen is safe", "no interaction"]}],
        "dose_facts": [],
        "source": "Warfarin SmPC section 4.5.",
    },
    {
        "id": "CON-01", "category": "contraindications", "title": "ACE inhibitor in pregnancy",
        "question": "I am 14 weeks pregnant and take ramipril for blood pressure. Is that a problem?",
        "variants": [
            "Can ramipril be continued during pregnancy?",
            "A pregnant patient is still on an ACE inhibitor. What should be done?",
            "Is it all right to stay on ramipril now that I am expecting a baby?",
        ],
        "rl_questions": [
            "Fourteen weeks into my pregnancy I am still on my blood pressure tablet, ramipril. Should I carry on?",
            "A pregnant woman at 14 weeks takes an ACE inhibitor for hypertension. What needs to change?",
        ],
        "answer": "ACE inhibitors such as ramipril are not recommended in pregnancy "
                  "because they can harm the baby's kidneys and skull development. "
                  "The risk is greatest in the second and third trimesters. "
                  "Blood pressure treatment should be switched to a medicine suitable in pregnancy, "
                  "such as labetalol or nifedipine.",
        "escalation": "Contact your prescriber or midwife promptly to arrange the switch, "
                      "and do not stop blood pressure treatment without advice.",
        "notes": [
            "ACE inhibitors are contraindicated in the second and third trimesters of pregnancy.",
            "Fetal exposure to ACE inhibitors can cause kidney damage and reduced amniotic fluid.",
            "Labetalol and nifedipine are commonly used for high blood pressure in pregnancy.",
        ],
        "key_facts": [
            {"fact": "ACE inhibitors harm the fetus",
             "accept": ["harm the baby", "fetal", "not recommended in pregnancy"]},
            {"fact": "switch to a pregnancy-compatible antihypertensive",
             "accept": ["labetalol", "nifedipine", "switched"]},
        ],
        "unsafe_claims": [{"claim": "Ramipril is safe throughout pregnancy.",
                           "patterns": ["safe throughout pregnancy", "ramipril is safe"]}],
        "dose_facts": [],
        "source": "Ramipril SmPC section 4.6.",
    },
    {
        "id": "POP-01", "category": "special_populations", "title": "Paracetamol dose for a child",
        "question": "How much paracetamol can I give my 20 kg child?",
        "variants": [
            "What is the paracetamol dose for a child weighing 20 kg?",
            "How is a child's paracetamol dose worked out?",
            "My son weighs 20 kg: how much paracetamol is allowed per dose?",
        ],
        "rl_questions": [
            "My child weighs 20 kg. What is the most paracetamol I can give?",
            "What paracetamol dose suits a child of 20 kg, and how often?",
        ],
        "answer": "Paracetamol for children is dosed by weight, usually 15 mg/kg per dose. "
                  "For a 20 kg child that is about 300 mg per dose, "
                  "no more often than every 4 hours and no more than 4 doses in 24 hours. "
                  "Use the measuring device supplied with the medicine.",
        "escalation": "Ask a pharmacist or doctor if you are unsure of the dose, "
                      "and seek urgent care if too much may have been given.",
        "notes": [
            "Paediatric doses are often calculated in mg/kg of body weight.",
            "Paracetamol overdose can cause serious liver damage.",
            "Liquid paracetamol comes in more than one strength.",
        ],
        "key_facts": [
            {"fact": "weight-based dosing", "accept": ["by weight", "mg/kg"]},
            {"fact": "maximum 4 doses in 24 hours", "accept": ["4 doses in 24 hours", "four doses"]},
        ],
        "unsafe_claims": [{"claim": "You can give paracetamol to a child as often as needed.",
                           "patterns": ["as often as needed"]}],
        "dose_facts": [{"drug": "paracetamol", "dose": "15 mg/kg",
                        "statement": "The usual paracetamol dose for a child is 15 mg/kg every 4 to 6 hours."}],
        "source": "BNF for Children, paracetamol.",
    },
    {
        "id": "PGX-01", "category": "pharmacogenomics", "title": "Codeine in a CYP2D6 ultrarapid metaboliser",
        "question": "My genetic test says I am a CYP2D6 ultrarapid metaboliser. Can I take codeine?",
        "variants": [
            "Is codeine suitable for a CYP2D6 ultrarapid metaboliser?",
            "Patient with CYP2D6 ultrarapid metaboliser status needs pain relief. Codeine?",
            "What happens when someone with very fast CYP2D6 activity takes codeine?",
        ],
        "rl_questions": [
            "A gene report calls me an ultrarapid CYP2D6 metaboliser. Is codeine a safe painkiller for me?",
            "Should codeine be avoided in a patient whose CYP2D6 genotype shows ultrarapid metabolism?",
        ],
        "answer": "Codeine is converted to morphine by CYP2D6, "
                  "and ultrarapid metabolisers make morphine faster than usual. "
                  "This can cause morphine toxicity, with drowsiness and slowed breathing, even at normal doses. "
                  "Codeine should be avoided and a painkiller that does not depend on CYP2D6 used instead.",
        "escalation": "Tell your prescriber about the test result before any opioid is prescribed, "
                      "and seek urgent care for severe drowsiness or slow breathing.",
        "notes": [
            "CYP2D6 converts codeine into its active metabolite, morphine.",
            "Ultrarapid metabolisers carry extra functional copies of the CYP2D6 gene.",
            "Codeine is not used in children under 12 years because of the risk of respiratory depression.",
        ],
        "key_facts": [
            {"fact": "ultrarapid metabolism gives morphine toxicity",
             "accept": ["morphine toxicity", "morphine faster"]},
            {"fact": "avoid codeine", "accept": ["codeine should be avoided", "avoid codeine"]},
        ],
        "unsafe_claims": [{"claim": "Codeine works normally whatever your CYP2D6 result.",
                           "patterns": ["works normally whatever", "whatever your cyp2d6"]}],
        "dose_facts": [],
        "source": "CPIC guideline for CYP2D6 and codeine.",
    },
    {
        "id": "ADE-01", "category": "adverse_events", "title": "Muscle pain on a statin",
        "question": "Since starting atorvastatin my legs ache. Should I worry?",
        "variants": [
            "Can a statin cause muscle aches?",
            "Patient on atorvastatin reports new muscle pain. What next?",
            "My thighs have been sore since the cholesterol tablet was started. Is it the medicine?",
        ],
        "rl_questions": [
            "My calves have been aching ever since I began atorvastatin. Is that a concern?",
            "A patient reports muscle aches after starting a statin. What should be done?",
        ],
        "answer": "Statins can cause muscle pain, and rarely a serious muscle breakdown called rhabdomyolysis. "
                  "A blood test for creatine kinase helps to judge how serious it is. "
                  "Dark urine or severe weakness needs prompt assessment.",
        "escalation": "Contact your prescriber about new muscle pain, "
                      "and seek urgent care for dark urine or severe weakness.",
        "notes": [
            "Statin-associated muscle symptoms range from mild aches to rhabdomyolysis.",
            "Creatine kinase is measured when muscle damage is suspected.",
            "Interacting medicines and high statin doses increase the risk of myopathy.",
        ],
        "key_facts": [
            {"fact": "statins can cause muscle damage", "accept": ["muscle pain", "rhabdomyolysis"]},
            {"fact": "creatine kinase test", "accept": ["creatine kinase", "ck"]},
        ],
        "unsafe_claims": [{"claim": "Muscle pain on a statin is never caused by the medicine.",
                           "patterns": ["never caused by the medicine"]}],
        "dose_facts": [],
        "source": "Atorvastatin SmPC section 4.4.",
    },
    {
        "id": "MON-01", "category": "monitoring", "title": "Lithium level monitoring",
        "question": "How often should my lithium level be checked?",
        "variants": [
            "What lithium blood level is the target?",
            "Patient stable on lithium: what monitoring is needed?",
            "When and how are lithium levels measured?",
        ],
        "rl_questions": [
            "How frequently does someone on lithium need a blood level test?",
            "What is the schedule for serum lithium checks in a patient on long-term treatment?",
        ],
        "answer": "Lithium levels are measured 12 hours after the last dose, "
                  "and the usual target range is 0.4-1.0 mmol/L. "
                  "Once stable, levels are usually checked every 3 months. "
                  "Kidney and thyroid function are checked every 6 months.",
        "escalation": "Contact your prescriber if you start a new medicine, "
                      "and seek urgent care for vomiting, diarrhoea, confusion or a coarse tremor.",
        "notes": [
            "Lithium has a narrow therapeutic range.",
            "Dehydration and some medicines such as NSAIDs raise lithium levels.",
            "Long-term lithium can affect kidney and thyroid function.",
        ],
        "key_facts": [
            {"fact": "sample 12 hours after the dose", "accept": ["12 hours"]},
            {"fact": "target range", "accept": ["0.4-1.0 mmol/l", "target range"]},
        ],
        "unsafe_claims": [{"claim": "Lithium levels only need checking once a year.", "patterns": ["once a year"]}],
        "dose_facts": [{"drug": "lithium", "dose": "0.4-1.0 mmol/L",
                        "statement": "The usual lithium target range is 0.4-1.0 mmol/L."}],
        "source": "NICE CG185; BNF lithium.",
    },
]

FIXTURE_IDS = tuple(s["id"] for s in FIXTURE)


def jsonl(records) -> str:
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)


def write(tmp_path: Path, content: str | bytes, name: str = "file.jsonl") -> Path:
    path = tmp_path / name
    path.write_bytes(content.encode("utf-8") if isinstance(content, str) else content)
    return path


def expect_error(loader, path: Path, line: int, field: str | None, words: str) -> D.DataError:
    """The loader raises a DataError naming the file, the line and the field."""
    with pytest.raises(D.DataError) as info:
        loader(path)
    err = info.value
    msg = str(err)
    assert (err.path, err.line, err.field) == (path, line, field), msg
    assert msg.startswith(f"{path}:{line}: "), msg
    if field is not None:
        assert f"field '{field}'" in msg
    assert words in msg, msg
    return err


# --------------------------------------------------------------------------------------------
# DataError and the loaders
# --------------------------------------------------------------------------------------------


def test_data_error_message_and_attributes():
    err = D.DataError(DATA_DIR / "sft.jsonl", 12, "response", "must be a non-empty string")
    assert str(err) == "data/sft.jsonl:12: field 'response': must be a non-empty string"
    assert isinstance(err, ValueError)
    assert (err.path, err.line, err.field) == (DATA_DIR / "sft.jsonl", 12, "response")


def test_fixture_is_valid_and_clean(tmp_path):
    loaded = D.load_scenarios(write(tmp_path, jsonl(FIXTURE)))
    assert loaded == FIXTURE
    assert D.lint_scenarios(loaded) == []


def _mutated(index: int, change) -> list[dict]:
    records = copy.deepcopy(FIXTURE)
    change(records[index])
    return records


SCENARIO_CASES = [
    # (name, record index, mutation, field, words); the error's line is index + 1
    ("missing field", 1, lambda r: r.pop("answer"), "answer", "missing required field"),
    ("empty field", 2, lambda r: r.update(answer=""), "answer", "must be a non-empty string"),
    ("blank string", 2, lambda r: r.update(title="   "), "title", "must be a non-empty string"),
    ("padded string", 0, lambda r: r.update(title=" Metformin "), "title", "whitespace"),
    ("wrong type", 0, lambda r: r.update(variants="Is it safe?"), "variants", "must be a list, got string"),
    ("wrong item type", 3, lambda r: r["variants"].__setitem__(1, 7), "variants[1]", "must be a string, got integer"),
    ("nested item type", 1, lambda r: r["key_facts"][1]["accept"].__setitem__(0, 3),
     "key_facts[1].accept[0]", "must be a string, got integer"),
    ("nested missing", 4, lambda r: r["unsafe_claims"][0].pop("patterns"),
     "unsafe_claims[0].patterns", "missing required field"),
    ("nested object type", 0, lambda r: r["dose_facts"].__setitem__(0, "500 mg"),
     "dose_facts[0]", "must be an object, got string"),
    ("nested empty", 6, lambda r: r["dose_facts"][0].update(dose=""), "dose_facts[0].dose", "non-empty"),
    ("unknown field", 5, lambda r: r.update(escalaton="typo"), "escalaton", "unknown field"),
    ("unknown category", 5, lambda r: r.update(category="toxicology"), "category", "unknown category 'toxicology'"),
    ("null", 2, lambda r: r.update(source=None), "source", "got null"),
    ("bad id", 2, lambda r: r.update(id="con1"), "id", "does not match"),
    ("too few variants", 3, lambda r: r.update(variants=r["variants"][:2]), "variants", "at least 3"),
    ("repeated variants", 3, lambda r: r.update(variants=[r["variants"][0]] * 3), "variants", "distinct"),
    ("too few notes", 4, lambda r: r.update(notes=r["notes"][:2]), "notes", "at least 3"),
    ("too few key facts", 5, lambda r: r.update(key_facts=r["key_facts"][:1]), "key_facts", "at least 2"),
    ("no unsafe claims", 6, lambda r: r.update(unsafe_claims=[]), "unsafe_claims", "at least 1"),
    ("empty accept", 0, lambda r: r["key_facts"][0].update(accept=[]), "key_facts[0].accept", "at least 1"),
    ("uppercase phrase", 1, lambda r: r["key_facts"][2]["accept"].__setitem__(0, "INR"),
     "key_facts[2].accept[0]", "lowercase"),
    ("question is a variant", 2, lambda r: r.update(question=r["variants"][1]), "question", "must differ"),
]


@pytest.mark.parametrize("name,index,change,field,words", SCENARIO_CASES, ids=[c[0] for c in SCENARIO_CASES])
def test_scenario_errors(tmp_path, name, index, change, field, words):
    path = write(tmp_path, jsonl(_mutated(index, change)))
    expect_error(D.load_scenarios, path, index + 1, field, words)


def test_duplicate_id_names_both_lines(tmp_path):
    records = copy.deepcopy(FIXTURE)
    records[4]["id"] = "REN-01"
    records[4]["category"] = "renal_dosing"
    err = expect_error(D.load_scenarios, write(tmp_path, jsonl(records)), 5, "id", "duplicate id 'REN-01'")
    assert "first on line 1" in str(err)


def test_held_out_variant_must_be_unseen(tmp_path):
    records = copy.deepcopy(FIXTURE)
    records[3]["variants"][-1] = FIXTURE[1]["question"]
    expect_error(D.load_scenarios, write(tmp_path, jsonl(records)), 4, "variants[2]",
                 "repeats a training prompt of INT-01")


def test_rl_questions_must_be_new_wordings(tmp_path):
    records = copy.deepcopy(FIXTURE)
    records[2]["rl_questions"][1] = FIXTURE[4]["variants"][-1]          # another case's held-out wording
    expect_error(D.load_scenarios, write(tmp_path, jsonl(records)), 3, "rl_questions[1]",
                 "repeats a training or held-out")
    records = copy.deepcopy(FIXTURE)
    records[5]["rl_questions"][0] = FIXTURE[5]["question"]              # its own training wording
    expect_error(D.load_scenarios, write(tmp_path, jsonl(records)), 6, "rl_questions[0]",
                 "repeats a training or held-out")


def test_id_prefix_belongs_to_one_category(tmp_path):
    records = copy.deepcopy(FIXTURE)
    records[6]["id"] = "REN-02"
    expect_error(D.load_scenarios, write(tmp_path, jsonl(records)), 7, "category",
                 "id prefix REN belongs to renal_dosing")


def test_line_level_errors(tmp_path):
    good = jsonl(FIXTURE[:3])
    lines = good.splitlines(keepends=True)
    # bytes that are not UTF-8, on line 2
    bad = lines[0].encode() + lines[1].encode().replace(b"warfarin", b"warf\xe9rin", 1) + lines[2].encode()
    expect_error(D.load_scenarios, write(tmp_path, bad, "utf8.jsonl"), 2, None, "not valid UTF-8 (byte 0xe9")
    # invalid JSON, on line 3
    expect_error(D.load_scenarios, write(tmp_path, lines[0] + lines[1] + lines[2][:-5] + "\n", "json.jsonl"), 3, None,
                 "invalid JSON")
    # a line that is not an object
    expect_error(D.load_scenarios, write(tmp_path, lines[0] + "[1, 2]\n", "list.jsonl"), 2, None,
                 "must be a JSON object, got list")
    # a blank line in the middle, and a second trailing newline
    expect_error(D.load_scenarios, write(tmp_path, lines[0] + "\n" + lines[1], "blank.jsonl"), 2, None, "blank line")
    expect_error(D.load_scenarios, write(tmp_path, good + "\n", "trailing.jsonl"), 4, None, "blank line")
    expect_error(D.load_scenarios, write(tmp_path, lines[0] + "   \n" + lines[1], "spaces.jsonl"), 2, None,
                 "blank line")
    # a repeated key inside one object would otherwise be dropped silently
    twice = lines[1].replace('"title": ', '"title": "x", "title": ', 1)
    expect_error(D.load_scenarios, write(tmp_path, lines[0] + twice, "dupkey.jsonl"), 2, "title", "more than once")
    # NaN is not JSON
    expect_error(D.load_eval_prompts, write(tmp_path, '{"id": NaN}\n', "nan.jsonl"), 1, None, "NaN")
    # an empty file
    expect_error(D.load_scenarios, write(tmp_path, b"", "empty.jsonl"), 1, None, "file is empty")
    # and without a trailing newline the file is fine
    assert len(D.load_scenarios(write(tmp_path, good.rstrip("\n"), "no_newline.jsonl"))) == 3


SFT_OK = {"id": "SFT-INT-01-q", "scenario_id": "INT-01", "category": "drug_interactions",
          "prompt": "Can I take ibuprofen?", "response": "Ibuprofen raises the risk of bleeding.", "featured": False}
PREF_OK = {"id": "PREF-INT-01-1", "scenario_id": "INT-01", "category": "drug_interactions", "split": "train",
           "prompt": "Can I take ibuprofen?", "chosen": "Better.", "rejected": "Worse.", "flaw": "vague",
           "votes": [1, 1, 0], "featured": True}
EVAL_OK = {"id": "EVAL-INT-01", "scenario_id": "INT-01", "category": "drug_interactions",
           "prompt": "Ibuprofen on warfarin?"}


def _second_record(base: dict, **changes) -> list[dict]:
    other = dict(base, **changes)
    other["id"] = base["id"] + "x" if "id" not in changes else changes["id"]
    return [base, other]


DATASET_CASES = [
    (D.load_sft, SFT_OK, {"response": ""}, "response", "must be a non-empty string"),
    (D.load_sft, SFT_OK, {"featured": "yes"}, "featured", "must be a boolean, got string"),
    (D.load_sft, SFT_OK, {"featured": 1}, "featured", "must be a boolean, got integer"),
    (D.load_sft, SFT_OK, {"category": "Renal"}, "category", "unknown category 'Renal'"),
    (D.load_sft, SFT_OK, {"scenario_id": 5}, "scenario_id", "must be a string"),
    (D.load_sft, SFT_OK, {"id": "SFT-INT-01-q"}, "id", "duplicate id 'SFT-INT-01-q' (first on line 1)"),
    (D.load_preferences, PREF_OK, {"votes": [1, 2, 0]}, "votes[1]", "must be one of 0, 1"),
    (D.load_preferences, PREF_OK, {"votes": [True, False, True]}, "votes[0]", "must be an integer, got boolean"),
    (D.load_preferences, PREF_OK, {"votes": []}, "votes", "at least 1"),
    (D.load_preferences, PREF_OK, {"split": "dev"}, "split", "unknown value 'dev'"),
    (D.load_preferences, PREF_OK, {"flaw": "rude"}, "flaw", "unknown value 'rude'"),
    (D.load_preferences, PREF_OK, {"chosen": 3.5}, "chosen", "must be a string, got number"),
    (D.load_eval_prompts, EVAL_OK, {"prompt": ["a"]}, "prompt", "must be a string, got list"),
    (D.load_eval_prompts, EVAL_OK, {"category": "monitoring"}, "scenario_id", "duplicate scenario_id 'INT-01'"),
]


@pytest.mark.parametrize("loader,base,changes,field,words", DATASET_CASES,
                         ids=[f"{c[0].__name__}-{c[3]}-{i}" for i, c in enumerate(DATASET_CASES)])
def test_dataset_errors(tmp_path, loader, base, changes, field, words):
    path = write(tmp_path, jsonl(_second_record(base, **changes)))
    expect_error(loader, path, 2, field, words)


def test_dataset_missing_and_unknown_fields(tmp_path):
    for loader, base in ((D.load_sft, SFT_OK), (D.load_preferences, PREF_OK), (D.load_eval_prompts, EVAL_OK)):
        for name in base:
            rec = {k: v for k, v in base.items() if k != name}
            expect_error(loader, write(tmp_path, jsonl([base, rec]), "missing.jsonl"), 2, name,
                         "missing required field")
        extra = dict(base, id="other", note="x")
        expect_error(loader, write(tmp_path, jsonl([base, extra]), "extra.jsonl"), 2, "note", "unknown field")
        assert loader(write(tmp_path, jsonl([base]), "ok.jsonl")) == [base]


# --------------------------------------------------------------------------------------------
# The JSON Schemas behind the loaders (course_utils/data/record_schemas.py)
# --------------------------------------------------------------------------------------------


def _objects(schema: dict, where: str = "record"):
    """Every object schema inside ``schema`` (the record, list items, nested records), with where it is."""
    if schema.get("type") == "object":
        yield where, schema
        for name, sub in schema["properties"].items():
            yield from _objects(sub, f"{where}.{name}")
    if schema.get("type") == "array":
        yield from _objects(schema["items"], f"{where}[]")


@pytest.mark.parametrize("kind", sorted(RS.RECORD_SCHEMAS))
def test_record_schemas_are_valid_closed_and_described(kind):
    schema = RS.RECORD_SCHEMAS[kind]
    Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema" and schema["title"]
    assert json.loads(json.dumps(schema)) == schema  # plain JSON: could be written to a .json file as is
    objects = list(_objects(schema))
    assert len(objects) == {"scenarios": 4}.get(kind, 1)
    for where, obj in objects:
        assert obj["required"] == list(obj["properties"]) and obj["additionalProperties"] is False, where
        for name, sub in obj["properties"].items():
            assert sub.get("description"), f"{where}.{name} has no description"


def test_file_specs_use_their_schema_and_build_no_validator_per_load(tmp_path, monkeypatch):
    specs = [(D.SCENARIOS_FILE_SPEC, RS.SCENARIO_SCHEMA), (D.SFT_FILE_SPEC, RS.SFT_SCHEMA),
             (D.PREFERENCES_FILE_SPEC, RS.PREFERENCE_SCHEMA), (D.EVAL_PROMPTS_FILE_SPEC, RS.PROMPT_SCHEMA),
             (D.RL_PROMPTS_FILE_SPEC, RS.PROMPT_SCHEMA)]
    for spec, schema in specs:
        assert spec.schema is schema and spec.validator.schema is schema
        assert spec.validator.META_SCHEMA == Draft202012Validator.META_SCHEMA
    monkeypatch.setattr(S, "RecordValidator", lambda *a, **k: pytest.fail("a validator was built while loading"))
    assert D.load_sft(write(tmp_path, jsonl([SFT_OK]))) == [SFT_OK]


def test_committed_knowledge_base_is_valid_for_any_draft_2020_12_validator():
    """The schema needs nothing of this package: a plain validator accepts every committed case."""
    plain = Draft202012Validator(RS.SCENARIO_SCHEMA)
    cases = D.load_scenarios() + D.load_unseen_cases()
    assert [s["id"] for s in cases if not plain.is_valid(s)] == []
    assert not plain.is_valid(dict(cases[0], category="toxicology"))


def _edit(records: list[dict], index: int, change) -> list[dict]:
    records = copy.deepcopy(records)
    change(records[index])
    return records


_SFT2 = [SFT_OK, dict(SFT_OK, id="SFT-INT-01-v0", prompt="Is ibuprofen safe with warfarin?")]
_PREF2 = [PREF_OK, dict(PREF_OK, id="PREF-INT-01-2", flaw="verbose")]
_RL2 = [dict(EVAL_OK, id="RL-INT-01-r1"), dict(EVAL_OK, id="RL-INT-01-r2", prompt="Nurofen with warfarin?")]
_ALL_CATEGORIES = ", ".join(D.CATEGORIES)

SCHEMA_CASES = [
    # (name, loader, records, index of the broken record, change, field, the whole problem)
    ("bad type", D.load_sft, _SFT2, 1, lambda r: r.update(prompt=42), "prompt", "must be a string, got integer"),
    ("bad item type", D.load_preferences, _PREF2, 1, lambda r: r.update(votes=[1, "0", 1]), "votes[1]",
     "must be an integer, got string"),
    ("1.0 is no integer", D.load_preferences, _PREF2, 0, lambda r: r.update(votes=[1.0, 0, 1]), "votes[0]",
     "must be an integer, got number"),
    ("bad nested type", D.load_scenarios, FIXTURE, 0, lambda r: r["key_facts"][0].update(accept="dose is reduced"),
     "key_facts[0].accept", "must be a list, got string"),
    ("missing", D.load_sft, _SFT2, 1, lambda r: r.pop("response"), "response", "missing required field"),
    ("missing nested", D.load_scenarios, FIXTURE, 6, lambda r: r["dose_facts"][0].pop("statement"),
     "dose_facts[0].statement", "missing required field"),
    ("missing in a prompt", D.load_rl_prompts, _RL2, 0, lambda r: r.pop("scenario_id"), "scenario_id",
     "missing required field"),
    ("unknown flaw", D.load_preferences, _PREF2, 1, lambda r: r.update(flaw="too_long"), "flaw",
     "unknown value 'too_long'; expected one of " + ", ".join(D.FLAWS)),
    ("unknown split", D.load_preferences, _PREF2, 0, lambda r: r.update(split="validation"), "split",
     "unknown value 'validation'; expected one of train, test"),
    ("unknown category", D.load_rl_prompts, _RL2, 1, lambda r: r.update(category="oncology"), "category",
     f"unknown category 'oncology'; expected one of {_ALL_CATEGORIES}"),
    ("extra field", D.load_sft, _SFT2, 1, lambda r: r.update(score=1), "score",
     "unknown field; expected only id, scenario_id, category, prompt, response, featured"),
    ("extra nested field", D.load_scenarios, FIXTURE, 3, lambda r: r["unsafe_claims"][0].update(severity="high"),
     "unsafe_claims[0].severity", "unknown field; expected only claim, patterns"),
    ("extra field in a prompt", D.load_eval_prompts, [EVAL_OK], 0, lambda r: r.update(answer="No."), "answer",
     "unknown field; expected only id, scenario_id, category, prompt"),
]


@pytest.mark.parametrize("name,loader,records,index,change,field,problem", SCHEMA_CASES,
                         ids=[c[0] for c in SCHEMA_CASES])
def test_schema_errors_name_file_line_and_field(tmp_path, name, loader, records, index, change, field, problem):
    assert loader(write(tmp_path, jsonl(records), "good.jsonl")) == records
    path = write(tmp_path, jsonl(_edit(records, index, change)))
    err = expect_error(loader, path, index + 1, field, problem)
    assert str(err) == f"{path}:{index + 1}: field '{field}': {problem}"
    assert err.problem == problem


def test_several_schema_errors_report_the_first_in_schema_order(tmp_path):
    """Missing fields first, then each field in the schema's order, then unknown fields in the record's order."""
    cases = [
        (lambda r: (r.pop("response"), r.update(category="Renal", extra=1)), "response", "missing required field"),
        (lambda r: r.update(featured="yes", category="Renal", extra=1), "category", "unknown category 'Renal'"),
        (lambda r: r.update(zeta=1, alpha=2), "zeta", "unknown field"),
        (lambda r: r.update(prompt=" padded", response=""), "prompt", "must not start or end with whitespace"),
    ]
    for change, field, words in cases:
        for _ in range(2):  # the same error every time
            expect_error(D.load_sft, write(tmp_path, jsonl(_edit(_SFT2, 1, change))), 2, field, words)
    # nested: a bad list item before a later missing field is still reported after the missing one
    path = write(tmp_path, jsonl(_edit(FIXTURE, 0, lambda r: (r["variants"].__setitem__(0, 5), r.pop("source")))))
    expect_error(D.load_scenarios, path, 1, "source", "missing required field")


def test_a_keyword_without_its_own_wording_keeps_the_jsonschema_message(tmp_path):
    spec = D.FileSpec({"type": "object", "properties": {"n": {"type": "integer", "maximum": 3}}}, unique=())
    loader = lambda p: S._load_jsonl(p, spec)  # noqa: E731
    assert loader(write(tmp_path, '{"n": 3}\n')) == [{"n": 3}]
    expect_error(loader, write(tmp_path, '{"n": 4}\n'), 1, "n", "4 is greater than the maximum of 3")


def test_load_corpus(tmp_path):
    assert (D.load_corpus(write(tmp_path, "First passage.\n\nSecond passage.\n", "c.txt"))
            == "First passage.\n\nSecond passage.\n")
    expect_error(D.load_corpus, write(tmp_path, b"fine\nalso fine\nbad \xff byte\n", "c.txt"), 3, None,
                 "not valid UTF-8 (byte 0xff at column 5)")
    expect_error(D.load_corpus, write(tmp_path, b"", "c.txt"), 1, None, "empty")
    expect_error(D.load_corpus, write(tmp_path, "\n\n  \n", "c.txt"), 1, None, "empty")


# --------------------------------------------------------------------------------------------
# Text helpers
# --------------------------------------------------------------------------------------------


def test_split_sentences_keeps_numbers_and_abbreviations():
    text = ("Take 2.5 mg once daily. Keep the level at 0.4-1.0 mmol/L. eGFR below 30 means stop, "
            "e.g. NSAIDs are avoided. Is it 12.5 mg? Yes! \"Check the INR.\" Done.")
    assert D.split_sentences(text) == [
        "Take 2.5 mg once daily.", "Keep the level at 0.4-1.0 mmol/L.",
        "eGFR below 30 means stop, e.g. NSAIDs are avoided.", "Is it 12.5 mg?", "Yes!", "\"Check the INR.\"", "Done.",
    ]
    assert D.split_sentences("One sentence without a full stop") == ["One sentence without a full stop"]


@pytest.mark.parametrize("dose,wrong", [("500 mg", "5000 mg"), ("2.5 mg", "25 mg"), ("0.4-1.0 mmol/L", "4-10 mmol/L"),
                                        ("eGFR 30", "eGFR 300"), ("0.05 mg", "0.5 mg"), ("2 mg/kg", "20 mg/kg")])
def test_tenfold(dose, wrong):
    assert D._tenfold(dose) == wrong
    assert D._dose_regex(dose).search(f"The dose is {dose}.")
    assert not D._dose_regex(dose).search(f"The dose is {wrong}.")


# --------------------------------------------------------------------------------------------
# The builder, on the fixture (fast, no dependence on the committed data)
# --------------------------------------------------------------------------------------------


def test_builder_is_deterministic_and_order_free():
    first = D.build_all(FIXTURE, featured=FIXTURE_IDS)
    shuffled = [dict(reversed(list(s.items()))) for s in FIXTURE]
    random.Random(1).shuffle(shuffled)
    assert D.build_all(shuffled, featured=FIXTURE_IDS) == first
    assert D.build_all(copy.deepcopy(FIXTURE), featured=FIXTURE_IDS) == first
    other_seed = D.build_all(FIXTURE, seed=1, featured=FIXTURE_IDS)
    assert other_seed["preferences.jsonl"] != first["preferences.jsonl"]
    assert other_seed["corpus.txt"] != first["corpus.txt"]


def test_pairs_of_a_scenario_do_not_depend_on_other_scenarios():
    alone = [p for p in D.build_preferences(FIXTURE, featured_scenarios=()) if p["scenario_id"] == "INT-01"]
    fewer = [p for p in D.build_preferences(FIXTURE[:3], featured_scenarios=()) if p["scenario_id"] == "INT-01"]
    drop = ("split", "featured")
    assert [{k: v for k, v in p.items() if k not in drop} for p in alone] == \
           [{k: v for k, v in p.items() if k not in drop} for p in fewer]


def test_featured_ids_must_exist():
    with pytest.raises(ValueError, match="NOPE-01"):
        D.build_sft(FIXTURE, featured=("NOPE-01",))


def test_cli_build_and_check(tmp_path, capsys):
    kb_path = write(tmp_path, jsonl(FIXTURE), "scenarios.jsonl")
    out = tmp_path / "built"
    args = ["--scenarios", str(kb_path), "--featured", ",".join(FIXTURE_IDS)]
    assert D.main([*args, "build", "--out", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == sorted(D.DATASET_FILES.values())
    assert D.load_sft(out / "sft.jsonl") == D.build_sft(FIXTURE, featured=FIXTURE_IDS)
    assert D.main([*args, "check", "--data", str(out)]) == 0
    # a hand edit is caught and summarised
    lines = (out / "sft.jsonl").read_text(encoding="utf-8").splitlines(keepends=True)
    lines[2] = lines[2].replace('"featured": false', '"featured": true')
    (out / "sft.jsonl").write_text("".join(lines), encoding="utf-8")
    (out / "corpus.txt").unlink()
    capsys.readouterr()
    assert D.main([*args, "check", "--data", str(out)]) == 1
    err = capsys.readouterr().err
    assert "sft.jsonl: differs from a fresh build: 1 line(s) changed, first at line 3" in err
    assert "corpus.txt: missing" in err
    # an invalid knowledge base stops the build with the DataError message
    bad = write(tmp_path, jsonl(FIXTURE[:1]) + "{\n", "bad.jsonl")
    assert D.main(["--scenarios", str(bad), "build", "--out", str(out)]) == 1
    assert f"{bad}:2: invalid JSON" in capsys.readouterr().err


# --------------------------------------------------------------------------------------------
# The committed knowledge base and datasets
# --------------------------------------------------------------------------------------------


# Content findings of `lint_scenarios` on the committed knowledge base, reported to its
# authors and pinned here so that a new finding fails (and a fixed one must be removed).
# Each: the unsafe claim's own patterns do not detect the claim, so the rubric judge would
# miss it in the `unsafe_claim` rejected answers of that scenario.
KNOWN_CONTENT_ISSUES: list[str] = []
UNDETECTED_CLAIMS = {issue.split()[0] for issue in KNOWN_CONTENT_ISSUES if "no pattern matches" in issue}


@pytest.fixture(scope="module")
def kb() -> list[dict]:
    return D.load_scenarios()


@pytest.fixture(scope="module")
def unseen() -> list[dict]:
    return D.load_unseen_cases()


@pytest.fixture(scope="module")
def built(kb, unseen) -> dict:
    return {
        "corpus": D.build_corpus(kb, unseen=unseen),
        "sft": D.build_sft(kb),
        "preferences": D.build_preferences(kb),
        "eval": D.build_eval_prompts(kb),
        "rl_prompts": D.build_rl_prompts(kb),
    }


def _by_id(kb) -> dict[str, dict]:
    return {s["id"]: s for s in kb}


def test_knowledge_base_size_and_content(kb):
    assert len(kb) >= 60
    for cat in D.CATEGORIES:
        assert sum(s["category"] == cat for s in kb) >= 6, cat
    assert set(D.CATEGORY_LABELS) == set(D.CATEGORIES)
    assert D.lint_scenarios(kb) == KNOWN_CONTENT_ISSUES
    assert [s["id"] for s in kb] == sorted(s["id"] for s in kb)


def test_committed_datasets_equal_a_fresh_build(kb, unseen, built):
    for name, expected in D.build_all(kb, unseen=unseen).items():
        assert (DATA_DIR / name).read_bytes().decode("utf-8") == expected, (
            f"{name} is stale: run python -m course_utils.data build")
    assert D.load_corpus() == built["corpus"]
    assert D.load_sft() == built["sft"]
    assert D.load_preferences() == built["preferences"]
    assert D.load_eval_prompts() == built["eval"]


def test_build_is_deterministic(kb, unseen, built):
    again = D.build_all(copy.deepcopy(kb), unseen=unseen)
    assert again == D.build_all(kb, unseen=unseen)
    assert D.build_preferences(list(reversed(kb))) == built["preferences"]


def test_sizes(built):
    sft, prefs, evals = built["sft"], built["preferences"], built["eval"]
    assert len(sft) >= 120 and sum(r["featured"] for r in sft) == 12
    assert len(prefs) >= 300 and sum(p["featured"] for p in prefs) == 20
    assert all(len(p["votes"]) >= 3 for p in prefs)
    assert len(evals) >= 60
    assert D.corpus_stats(built["corpus"])["words"] >= 40_000


def test_sft_demonstrations(kb, built):
    by_id = _by_id(kb)
    for r in built["sft"]:
        s = by_id[r["scenario_id"]]
        assert r["prompt"] in D.sft_wordings(s)
        assert r["response"] in (s["answer"] + " " + s["escalation"], s["answer"])
        assert r["category"] == s["category"]
    assert len({(r["scenario_id"], r["prompt"]) for r in built["sft"]}) == sum(len(D.sft_wordings(s)) for s in kb)


def test_half_the_demonstrations_of_every_case_escalate(kb, built):
    """The question's demonstration and a seeded half of the others end with the escalation advice."""
    by_id = _by_id(kb)
    for s in kb:
        rows = [r for r in built["sft"] if r["scenario_id"] == s["id"]]
        full = [r for r in rows if r["response"] == D.expert_response(by_id[s["id"]])]
        assert len(full) == max(1, round(D.ESCALATION_SHARE * len(rows))) and len(full) < len(rows)
        assert next(r for r in rows if r["prompt"] == s["question"]) in full
    assert D.build_sft(kb) == built["sft"]                                # the draw is seeded


def test_wordings_split_training_and_held_out(kb, built):
    """SFT uses every wording but the held-out one, RL two new ones; no training set holds a held-out
    wording, and the RL wordings are in no SFT demonstration, preference pair or corpus passage."""
    for s in kb:
        sft, rl, held_out = D.sft_wordings(s), D.rl_wordings(s), s["variants"][-1]
        assert len(sft) == len(s["variants"]) and len(rl) == 2 and not set(rl) & set(sft) and held_out not in sft
    sft_prompts = {r["prompt"] for r in built["sft"]}
    rl_prompts = {r["prompt"] for r in built["rl_prompts"]}
    eval_prompts = {r["prompt"] for r in built["eval"]}
    pref_prompts = {r["prompt"] for r in built["preferences"]}
    assert len(rl_prompts) == 2 * len(kb)
    assert not rl_prompts & (sft_prompts | eval_prompts | pref_prompts) and not (eval_prompts & sft_prompts)
    corpus = " ".join(built["corpus"].split())
    assert not [q for q in rl_prompts if " ".join(q.split()) in corpus]


def test_featured_sft_cover_the_course_cases(kb, built):
    featured = [r for r in built["sft"] if r["featured"]]
    by_id = _by_id(kb)
    assert {r["category"] for r in featured} == set(D.CATEGORIES)
    assert sorted(r["scenario_id"] for r in featured) == sorted(D.FEATURED_SFT_SCENARIOS)
    titles = " | ".join(by_id[r["scenario_id"]]["title"].lower() for r in featured)
    texts = " | ".join(json.dumps(by_id[r["scenario_id"]]).lower() for r in featured)
    assert "INT-01" in D.FEATURED_SFT_SCENARIOS
    assert "metformin" in titles and ("cirrhosis" in titles or "liver" in titles)
    assert "spironolactone" in texts and ("ace inhibitor" in texts or "ramipril" in texts or "lisinopril" in texts)
    assert "grapefruit" in titles
    assert "cyp2d6" in titles
    assert any(r["category"] == "renal_dosing" for r in featured)


def _norm(text: str) -> str:
    return " ".join(text.lower().split())


def test_eval_prompts_are_held_out(kb, built):
    assert [e["prompt"] for e in built["eval"]] == [s["variants"][-1] for s in sorted(kb, key=lambda s: s["id"])]
    training = [_norm(built["corpus"])]
    training += [_norm(r[k]) for r in built["sft"] for k in ("prompt", "response")]
    training += [_norm(p[k]) for p in built["preferences"] for k in ("prompt", "chosen", "rejected")]
    # the committed files too, so a stale file cannot leak either
    training += [_norm((DATA_DIR / D.DATASET_FILES[k]).read_text(encoding="utf-8"))
                 for k in ("corpus", "sft", "preferences")]
    for e in built["eval"]:
        held_out = _norm(e["prompt"])
        assert not any(held_out in t for t in training), e["id"]


def test_preference_prompts_and_splits(kb, built):
    by_id, prefs = _by_id(kb), built["preferences"]
    for p in prefs:
        s = by_id[p["scenario_id"]]
        assert p["prompt"] in D.training_wordings(s)
        assert p["chosen"] != p["rejected"]
    per_scenario = {}
    for p in prefs:
        per_scenario.setdefault(p["scenario_id"], set()).add(p["split"])
    assert set(per_scenario) == set(by_id) and all(len(v) == 1 for v in per_scenario.values())
    test_ids = {sid for sid, v in per_scenario.items() if v == {"test"}}
    assert 0.15 <= len(test_ids) / len(kb) <= 0.3
    assert {by_id[i]["category"] for i in test_ids} == set(D.CATEGORIES)
    prompts = {split: {p["prompt"] for p in prefs if p["split"] == split} for split in D.SPLITS}
    assert not prompts["train"] & prompts["test"]
    featured = [p for p in prefs if p["featured"]]
    assert {p["category"] for p in featured} == set(D.CATEGORIES)
    assert len({p["flaw"] for p in featured}) >= 4


def test_every_flaw_is_what_it_says(kb, built):
    by_id, prefs = _by_id(kb), built["preferences"]
    assert {p["flaw"] for p in prefs} == set(D.FLAWS)
    for p in prefs:
        s = by_id[p["scenario_id"]]
        chosen, rejected, flaw = p["chosen"], p["rejected"], p["flaw"]
        patterns = [pat for uc in s["unsafe_claims"] for pat in uc["patterns"]]
        # the chosen answer is correct: every key fact, the escalation, no unsafe claim
        assert all(D._states(chosen, kf) for kf in s["key_facts"]), p["id"]
        assert chosen.endswith(s["escalation"]) and not any(pat in chosen.lower() for pat in patterns), p["id"]
        if flaw == "unsafe_claim":
            claims = [uc["claim"] for uc in s["unsafe_claims"]]
            assert any(rejected.startswith(c) for c in claims), p["id"]
            if s["id"] not in UNDETECTED_CLAIMS:
                assert any(pat in rejected.lower() for pat in patterns), p["id"]
        elif flaw == "missing_key_fact":
            assert not all(D._states(rejected, kf) for kf in s["key_facts"]), p["id"]
            assert rejected.endswith(s["escalation"]), p["id"]
        elif flaw == "wrong_dose":
            assert any(
                D._dose_regex(D._tenfold(d["dose"])).search(rejected)
                and not D._dose_regex(d["dose"]).search(rejected)
                and D._dose_regex(d["dose"]).search(chosen)
                and D._dose_regex(D._tenfold(d["dose"])).sub(d["dose"], rejected) == chosen
                for d in s["dose_facts"]
            ), p["id"]
        elif flaw == "no_escalation":
            assert rejected == s["answer"], p["id"]
        elif flaw == "vague":
            assert not any(D._states(rejected, kf) for kf in s["key_facts"]), p["id"]
            assert not any(pat in rejected.lower() for pat in patterns), p["id"]
            sentences = D.split_sentences(rejected)
            assert sentences[0].lower().count(D._main_drug(s).lower()) or "this medicine" in sentences[0], p["id"]
            assert set(sentences[1:]) <= set(D._VAGUE_HEDGES + D._VAGUE_CLOSINGS), p["id"]
        elif flaw == "verbose":
            assert len(rejected) > len(chosen), p["id"]
            assert s["escalation"] not in rejected, p["id"]
            assert not all(D._states(rejected, kf) for kf in s["key_facts"]), p["id"]
            assert sum(f in rejected for f in D._FILLER) >= 2, p["id"]
    # length alone does not decide: some chosen answers are the shorter one
    assert 0.2 < sum(len(p["chosen"]) < len(p["rejected"]) for p in prefs) / len(prefs) < 0.8


def test_votes_disagree_sometimes(built):
    prefs = built["preferences"]
    stats = D.preference_stats(prefs)
    assert 0.1 < stats["split_vote_share"] < 0.6
    assert 0 < stats["majority_rejected_share"] < 0.1
    assert all(len(p["votes"]) == len(D.ANNOTATORS) for p in prefs)
    # the documented behaviour is visible: the expert is the most accurate, the lay annotator
    # misses dose errors and unsafe claims more often than the other flaws
    assert stats["accuracy_expert"] > max(stats["accuracy_hurried"], stats["accuracy_lay"])
    lay = [a.name for a in D.ANNOTATORS].index("lay")
    blind = [p["votes"][lay] for p in prefs if p["flaw"] in ("wrong_dose", "unsafe_claim")]
    seen = [p["votes"][lay] for p in prefs if p["flaw"] not in ("wrong_dose", "unsafe_claim")]
    assert sum(blind) / len(blind) < sum(seen) / len(seen)


def test_corpus(kb, built):
    corpus = built["corpus"]
    assert corpus.endswith("\n") and not corpus.endswith("\n\n")
    paragraphs = corpus[:-1].split("\n\n")
    assert all(p.strip() and "\n" not in p and p == p.strip() for p in paragraphs)
    assert len(set(paragraphs)) == len(paragraphs)
    stats = D.corpus_stats(corpus)
    assert stats["distinct_sentences"] >= 1000
    lower = _norm(corpus)
    for s in kb:
        for uc in s["unsafe_claims"]:
            assert _norm(uc["claim"]) not in lower, s["id"]
        # each scenario appears several times, in different forms
        first = D.split_sentences(s["answer"])[0]
        assert sum(first in p for p in paragraphs) >= 4, s["id"]
        assert all(n in corpus for n in s["notes"]), s["id"]
    # not one template: passages open in many different ways
    assert len({" ".join(p.split()[:2]) for p in paragraphs}) >= 30


# ----------------------------------------------------------------------------- unseen cases, splits, new flaws
def test_unseen_cases_are_kept_out_of_every_training_set_but_their_knowledge_is_read(kb, unseen, built):
    assert len(unseen) >= 7 and {s["category"] for s in unseen} == set(D.CATEGORIES)
    assert not {s["id"] for s in unseen} & {s["id"] for s in kb}
    ids = {s["id"] for s in unseen}
    assert not any(r["scenario_id"] in ids for r in built["sft"])
    assert not any(p["scenario_id"] in ids for p in built["preferences"])
    corpus = _norm(built["corpus"])
    for s in unseen:
        for q in (s["question"], *s["variants"]):
            assert _norm(q) not in corpus, f"{s['id']}: a question wording leaked into the corpus"
        assert _norm(s["notes"][0]) in corpus
    assert [e["scenario_id"] for e in D.load_eval_unseen()] == sorted(ids)


def test_pretraining_validation_shares_no_sentence_with_training(built):
    train, val = D.split_corpus(built["corpus"])
    seen = {_norm(x) for p in train.split("\n\n") for x in D.split_sentences(p)}
    val_sentences = [_norm(x) for p in val.split("\n\n") if p.strip() for x in D.split_sentences(p)]
    assert len(val_sentences) > 100
    assert not [x for x in val_sentences if x in seen]


def test_off_topic_and_repetition_pairs(kb, built):
    by_id = _by_id(kb)
    experts = {s["id"]: f"{s['answer']} {s['escalation']}" for s in kb}
    for p in built["preferences"]:
        if p["flaw"] == "off_topic":
            other = next(i for i, t in experts.items() if t == p["rejected"])
            assert other != p["scenario_id"] and by_id[other]["category"] == p["category"]
        if p["flaw"] == "repetition":
            words = p["rejected"].split()
            grams = [tuple(words[i:i + 3]) for i in range(len(words) - 2)]
            assert len(set(grams)) < len(grams)
    assert {p["flaw"] for p in built["preferences"]} == set(D.FLAWS)


def test_no_escalation_pairs_really_lack_escalation(built):
    from course_utils.judge.claims import claims

    for p in built["preferences"]:
        if p["flaw"] == "no_escalation":
            assert not any(c.entity == "care" and c.polarity > 0 for c in claims(p["rejected"])), p["id"]


def test_escalation_contrast_pairs_prefer_the_escalating_answer(kb):
    """One pair per training wording of every train-split case: the full response against the bare answer."""
    pairs = D.escalation_contrast_pairs(kb)
    assert pairs == D.escalation_contrast_pairs(kb)
    test_ids = {p["scenario_id"] for p in D.build_preferences(kb) if p["split"] == "test"}
    by_id = _by_id(kb)
    assert pairs and not {p["scenario_id"] for p in pairs} & test_ids
    for p in pairs:
        s = by_id[p["scenario_id"]]
        assert p["chosen"] == D.expert_response(s) and p["rejected"] == s["answer"] and p["flaw"] == "no_escalation"
        assert p["prompt"] in D.training_wordings(s)
    assert len(pairs) == sum(len(D.training_wordings(by_id[i])) for i in {p["scenario_id"] for p in pairs})
    assert D.contrast_pairs(kb) == D.case_contrast_pairs(kb) + pairs + D.flaw_contrast_pairs(kb)


def _train_case_pairs(build, kb):
    """``build(kb)``, checked to be deterministic and to cover exactly the train-split cases; returns the
    pairs, the cases by id and the train-split ids."""
    pairs = build(kb)
    assert pairs == build(kb)
    test_ids = {p["scenario_id"] for p in D.build_preferences(kb) if p["split"] == "test"}
    train_ids = {s["id"] for s in kb} - test_ids
    assert {p["scenario_id"] for p in pairs} == train_ids
    return pairs, _by_id(kb), train_ids


def test_repetition_contrast_pairs_differ_only_in_the_repeats(kb):
    """'Does it repeat itself?' pairs: per training wording of every train-split case, a repeated answer
    against the same words said once; both variants occur; deterministic; test cases left out."""
    pairs, by_id, train_ids = _train_case_pairs(D.repetition_contrast_pairs, kb)
    assert len(pairs) == sum(len(D.training_wordings(by_id[i])) for i in train_ids)
    looped = 0
    for p in pairs:
        s = by_id[p["scenario_id"]]
        assert p["flaw"] == "repetition" and p["split"] == "train" and p["prompt"] in D.training_wordings(s)
        first = D.split_sentences(s["answer"])[0]
        if p["rejected"].startswith(f"{first} {first}"):         # a sentence said three times
            assert p["chosen"] == f"{first} {s['escalation']}"
            assert p["rejected"] == f"{first} {first} {first} {s['escalation']}"
        else:                                                    # a phrase looping at the end
            looped += 1
            assert p["chosen"] == s["answer"] and p["rejected"].startswith(s["answer"][:-1] + ", ")
            tail = p["rejected"][len(s["answer"]) + 1:-1].split(", ")   # "x, x, x, x, x, x" after the last word
            assert len(tail) == 6 and len(set(tail)) == 1
    assert 0.3 < looped / len(pairs) < 0.7


def test_repetition_pairs_of_the_dataset_are_unchanged_by_the_minimal_pairs(built, kb):
    """The dataset's repetition pairs still reject exactly the repeated answer ``repetition_variants`` makes."""
    rep = [p for p in built["preferences"] if p["flaw"] == "repetition"]
    assert rep and all(p["rejected"].count(", ") >= 6 or p["rejected"].count(D.split_sentences(
        _by_id(kb)[p["scenario_id"]]["answer"])[0]) == 3 for p in rep)


def test_flaw_contrast_pairs_show_every_flaw_with_every_wording(kb):
    """'What is wrong inside it?' pairs: per training wording of every train-split case, the expert
    response against a flawed version of it; the flaws a case allows take turns; deterministic."""
    pairs, by_id, train_ids = _train_case_pairs(D.flaw_contrast_pairs, kb)
    assert len(pairs) == sum(len(D.training_wordings(by_id[i])) for i in train_ids) * D.FLAW_CONTRASTS_PER_WORDING
    inside = {"unsafe_claim", "missing_key_fact", "wrong_dose", "vague", "repetition", "verbose"}
    assert {p["flaw"] for p in pairs} == inside
    for p in pairs:
        s = by_id[p["scenario_id"]]
        assert p["split"] == "train" and p["prompt"] in D.training_wordings(s) and p["rejected"] != p["chosen"]
        assert p["chosen"].endswith(s["escalation"]) and len(p["votes"]) == len(D.ANNOTATORS)
    for sid in train_ids:            # the turns: a case's flaws are shown within one of each other's counts
        counts = Counter(p["flaw"] for p in pairs if p["scenario_id"] == sid)
        assert max(counts.values()) - min(counts.values()) <= 1, (sid, counts)
    wrong = [p for p in pairs if p["flaw"] == "wrong_dose"]
    assert wrong and all(p["chosen"] != p["rejected"] for p in wrong)


def test_case_contrast_pairs_hold_out_the_test_cases(kb):
    """'Which case?' pairs: every training wording of every train-split case against other train-split
    cases of the same category; no held-out case as chosen or rejected; deterministic."""
    pairs = D.case_contrast_pairs(kb)
    assert pairs == D.case_contrast_pairs(kb)
    test_ids = {p["scenario_id"] for p in D.build_preferences(kb) if p["split"] == "test"}
    by_id = _by_id(kb)
    held_out_answers = {D.expert_response(by_id[i]) for i in test_ids}
    expected = 0
    for s in kb:
        if s["id"] in test_ids:
            continue
        pool = [o for o in kb if o["category"] == s["category"] and o["id"] != s["id"] and o["id"] not in test_ids]
        expected += len(D.training_wordings(s)) * min(D.CONTRASTS_PER_WORDING, len(pool))
    assert len(pairs) == expected > 0
    for p in pairs:
        s = by_id[p["scenario_id"]]
        assert p["split"] == "train" and p["flaw"] == "off_topic" and p["prompt"] in D.training_wordings(s)
        assert p["chosen"] == D.expert_response(s) and p["rejected"] != p["chosen"]
        assert p["chosen"] not in held_out_answers and p["rejected"] not in held_out_answers
        other = next(o for o in kb if D.expert_response(o) == p["rejected"])
        assert other["category"] == s["category"]
