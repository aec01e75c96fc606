"""VocabularyTokenizer: pre-tokenisation of pharmaceutical text, round trips, files."""

from __future__ import annotations

import json

import pytest

from course_utils.tokenizer import SPECIAL_TOKENS, VocabularyTokenizer

SENTENCES = [
    "Metformin is contraindicated when eGFR < 30 mL/min/1.73 m2.",
    "The usual starting dose of metformin is 500 mg once or twice daily with meals.",
    "Paracetamol 15 mg/kg every 4-6 hours, up to 60 mg/kg per day, is the usual dose in children.",
    "Keep the lithium level at 0.4-1.0 mmol/L, measured 12 hours after the dose.",
    "Test for HLA-B*15:02 before starting carbamazepine in people of Han Chinese descent.",
    "Abacavir must not be given to carriers of HLA-B*57:01.",
    "CYP2D6 poor metabolisers (for example *4/*4) convert codeine poorly to morphine.",
    "A CYP2C19*2/*3 genotype reduces the activation of clopidogrel.",
    "Aminoglycosides can cause deafness in carriers of the m.1555A>G variant.",
    "If CrCl is ≥ 60 mL/min no dose change is needed; below 30, halve the dose.",
    "Stop the drug if potassium > 6.0 mmol/L or creatinine rises by 30-40%.",
    "Warfarin with clarithromycin raises the INR; check it within 3-5 days.",
    "A patient asked: \"Can I take ibuprofen with my lisinopril?\" The answer was no.",
    "Children under 16 should not take aspirin because of Reye's syndrome.",
    "Ask the pharmacist's advice before combining St John's wort with an SSRI.",
    "ACE inhibitors (drugs ending in -pril) can cause a dry cough.",
    "Seek urgent care (A&E or 999) for a blistering rash on allopurinol.",
    "Give 0.5 mg/kg of prednisolone, maximum 40 mg, for 3 days.",
    "Vancomycin troughs of 10-20 mg/L are targeted; in obesity, doses use total body weight.",
    "Doses above 1,000 mg of paracetamol per dose are not recommended.",
    "Gentamicin 7 mg/kg once daily; monitor levels after 6-14 hours.",
    "In pregnancy, valproate is avoided: the risk of malformations is about 10%.",
    "Digoxin toxicity is more likely when K+ is low [hypokalaemia].",
    "Methotrexate is taken once weekly, not daily, e.g. 7.5-25 mg on the same day each week.",
    "Allopurinol starts at 100 mg daily (50 mg if eGFR is 30-60) and is titrated.",
    "Is 2.5 mg of warfarin safe with an INR ≤ 2?",
    "QT prolongation > 500 ms is a reason to stop; don't combine two QT-prolonging drugs.",
    "TPMT-deficient patients need 10% of the usual azathioprine dose.",
    "Insulin glargine 10 units at night, adjusted by 2 units every 3 days.",
    "Serum sodium < 125 mmol/L with confusion needs urgent assessment.",
    "For SJS/TEN, never rechallenge.",
    "The Stevens-Johnson syndrome risk is highest in the first 8 weeks.",
    "eGFR < 30",
    "500 mg",
    "15 mg/kg",
    "0.4-1.0 mmol/L",
    "HLA-B*15:02",
]


@pytest.fixture(scope="module")
def tok() -> VocabularyTokenizer:
    return VocabularyTokenizer.fit(SENTENCES)


@pytest.mark.parametrize("text, tokens", [
    ("eGFR < 30", ["eGFR", "<", "30"]),
    ("500 mg", ["500", "mg"]),
    ("15 mg/kg", ["15", "mg/kg"]),
    ("0.4-1.0 mmol/L", ["0.4-1.0", "mmol/L"]),
    ("HLA-B*15:02", ["HLA-B*15:02"]),
    ("CYP2D6 *4 allele", ["CYP2D6", "*4", "allele"]),
    ("CrCl ≥ 60 mL/min.", ["CrCl", "≥", "60", "mL/min", "."]),
    ("dose 2.5.", ["dose", "2.5", "."]),
    ("K <= 3.5, Na >= 135", ["K", "<=", "3.5", ",", "Na", ">=", "135"]),
    ("30-45 minutes", ["30-45", "minutes"]),
    ("Stevens-Johnson (SJS)", ["Stevens-Johnson", "(", "SJS", ")"]),
    ("1,000 mg, 2 doses", ["1,000", "mg", ",", "2", "doses"]),
    ("the m.1555A>G variant", ["the", "m.1555A>G", "variant"]),
    ("<q> Dose? <a> 5 mg <eos>", ["<q>", "Dose", "?", "<a>", "5", "mg", "<eos>"]),
])
def test_pre_tokenisation_keeps_doses_units_and_alleles(text, tokens):
    assert VocabularyTokenizer.tokenize(text) == tokens


@pytest.mark.parametrize("sentence", SENTENCES)
def test_round_trip(tok, sentence):
    ids = tok.encode(sentence)
    assert tok.unk_id not in ids
    assert tok.decode(ids) == sentence


def test_special_tokens_have_fixed_ids(tok):
    assert [tok.pad_id, tok.bos_id, tok.eos_id, tok.unk_id, tok.q_id, tok.a_id] == [0, 1, 2, 3, 4, 5]
    assert tok.id_to_token[:6] == list(SPECIAL_TOKENS)
    assert all(tok.token_to_id[t] == i for i, t in enumerate(SPECIAL_TOKENS))


def test_bos_eos_and_skip_special(tok):
    ids = tok.encode("500 mg", add_bos=True, add_eos=True)
    assert ids[0] == tok.bos_id and ids[-1] == tok.eos_id
    assert tok.decode(ids) == "500 mg"
    assert tok.decode(ids, skip_special=False) == "<bos> 500 mg <eos>"
    sft = tok.encode("<q> 500 mg? <a> 15 mg/kg", add_eos=True)
    assert sft[0] == tok.q_id and tok.a_id in sft
    assert tok.decode(sft) == "500 mg? 15 mg/kg"
    assert tok.decode([tok.pad_id] * 3 + tok.encode("500 mg")) == "500 mg"


def test_unknown_words_map_to_unk(tok):
    ids = tok.encode("Metformin 500 mg zzzmab daily")
    assert ids.count(tok.unk_id) == 1
    assert tok.decode(ids) == "Metformin 500 mg <unk> daily"


def test_fit_orders_by_frequency_and_respects_limits():
    texts = ["b a a", "c b a"]                      # a: 3, b: 2, c: 1
    t = VocabularyTokenizer.fit(texts)
    assert t.id_to_token[6:] == ["a", "b", "c"] and t.vocab_size == 9
    assert VocabularyTokenizer.fit(texts, min_count=2).id_to_token[6:] == ["a", "b"]
    assert VocabularyTokenizer.fit(texts, max_size=7).id_to_token[6:] == ["a"]
    assert VocabularyTokenizer.fit(["z y", "y z"]).id_to_token[6:] == ["y", "z"]   # ties: alphabetical
    assert VocabularyTokenizer.fit(["<q> a <a> b"]).id_to_token[6:] == ["a", "b"]  # specials not counted twice
    assert VocabularyTokenizer.fit(["Warfarin warfarin"]).vocab_size == 8          # case is kept
    with pytest.raises(ValueError):
        VocabularyTokenizer.fit(texts, max_size=3)


def test_save_load_round_trip(tok, tmp_path):
    path = tmp_path / "tok.json"
    tok.save(path)
    assert "≥" in path.read_text(encoding="utf-8")             # readable UTF-8 JSON
    loaded = VocabularyTokenizer.load(path)
    assert loaded.id_to_token == tok.id_to_token and loaded.vocab_size == tok.vocab_size
    assert loaded.counts == tok.counts
    for s in SENTENCES:
        assert loaded.encode(s) == tok.encode(s)
    (tmp_path / "other.json").write_text(json.dumps({"tokens": ["a"]}))
    with pytest.raises(ValueError):
        VocabularyTokenizer.load(tmp_path / "other.json")


def test_decode_rejects_ids_outside_vocabulary(tok):
    with pytest.raises(ValueError, match="outside"):
        tok.decode([tok.vocab_size])
