"""The judge's vocabulary: drug names and classes, synonyms, and the cue words of its rules.

Every list is small, general and documented; none is keyed to a particular test answer. A
learner who adds a case with a new drug adds the drug here (``DRUG_CLASSES``), or the judge
treats it as an unknown word (never as a foreign drug).
"""

from __future__ import annotations


def _classes_table(text: str) -> dict[str, tuple[str, ...]]:
    """Parse lines ``drug: class; class; ...`` into {drug: (class, ...)}, in the order written."""
    table: dict[str, tuple[str, ...]] = {}
    for line in text.strip().splitlines():
        drug, sep, classes = line.partition(":")
        names = tuple(c.strip() for c in classes.split(";"))
        if not sep or not drug.strip() or not all(names) or drug.strip() in table:
            raise ValueError(f"drug-class table: bad or repeated line {line!r} (expected 'drug: class; class')")
        table[drug.strip()] = names
    return table


# Drug -> the classes it belongs to (class names as they are written in the knowledge base,
# singular, lowercase), one drug a line: ``drug: class; class``. Brand names map to their
# generic in ``BRANDS``.
DRUG_CLASSES: dict[str, tuple[str, ...]] = _classes_table("""
abacavir:               antiretroviral
aciclovir:              antiviral
valaciclovir:           antiviral
allopurinol:            xanthine oxidase inhibitor
amiodarone:             antiarrhythmic
amitriptyline:          tricyclic antidepressant; antidepressant; anticholinergic
amoxicillin:            penicillin; antibiotic
apixaban:               anticoagulant; doac
rivaroxaban:            anticoagulant; doac
edoxaban:               anticoagulant; doac
dabigatran:             anticoagulant; doac
warfarin:               anticoagulant; vitamin k antagonist
heparin:                anticoagulant
enoxaparin:             anticoagulant; low molecular weight heparin; heparin
aspirin:                nsaid; antiplatelet; salicylate
clopidogrel:            antiplatelet
ibuprofen:              nsaid; painkiller
naproxen:               nsaid; painkiller
diclofenac:             nsaid; painkiller
paracetamol:            painkiller; analgesic
codeine:                opioid; painkiller
tramadol:               opioid; painkiller
morphine:               opioid; painkiller
dihydrocodeine:         opioid; painkiller
pholcodine:             opioid; cough medicine
atorvastatin:           statin
simvastatin:            statin
rosuvastatin:           statin
pravastatin:            statin
azathioprine:           thiopurine; immunosuppressant
mercaptopurine:         thiopurine; immunosuppressant
thioguanine:            thiopurine
bisoprolol:             beta-blocker
propranolol:            beta-blocker
labetalol:              beta-blocker
timolol:                beta-blocker
atenolol:               beta-blocker
ramipril:               ace inhibitor
lisinopril:             ace inhibitor
enalapril:              ace inhibitor
perindopril:            ace inhibitor
losartan:               angiotensin receptor blocker; arb; sartan
candesartan:            angiotensin receptor blocker; arb; sartan
valsartan:              angiotensin receptor blocker; arb; sartan
spironolactone:         potassium-sparing diuretic; diuretic; aldosterone antagonist
furosemide:             loop diuretic; diuretic
bendroflumethiazide:    thiazide; diuretic
indapamide:             thiazide; diuretic
capecitabine:           fluoropyrimidine; chemotherapy
fluorouracil:           fluoropyrimidine; chemotherapy
carbamazepine:          antiepileptic
oxcarbazepine:          antiepileptic
lamotrigine:            antiepileptic
phenytoin:              antiepileptic
valproate:              antiepileptic
gabapentin:             antiepileptic; gabapentinoid
pregabalin:             antiepileptic; gabapentinoid
chlorphenamine:         antihistamine; anticholinergic
diphenhydramine:        antihistamine; anticholinergic
oxybutynin:             antimuscarinic; anticholinergic
ciprofloxacin:          fluoroquinolone; quinolone; antibiotic
levofloxacin:           fluoroquinolone; quinolone; antibiotic
moxifloxacin:           fluoroquinolone; quinolone; antibiotic
ofloxacin:              fluoroquinolone; quinolone; antibiotic
clarithromycin:         macrolide; antibiotic
erythromycin:           macrolide; antibiotic
doxycycline:            tetracycline; antibiotic
minocycline:            tetracycline; antibiotic
lymecycline:            tetracycline; antibiotic
tetracycline:           tetracycline; antibiotic
gentamicin:             aminoglycoside; antibiotic
vancomycin:             glycopeptide; antibiotic
nitrofurantoin:         antibiotic
trimethoprim:           antibiotic; antifolate
co-trimoxazole:         antibiotic; sulfonamide
metronidazole:          antibiotic
clozapine:              antipsychotic
digoxin:                cardiac glycoside
fluoxetine:             ssri; antidepressant
sertraline:             ssri; antidepressant
citalopram:             ssri; antidepressant
escitalopram:           ssri; antidepressant
paroxetine:             ssri; antidepressant
hydroxychloroquine:     antimalarial; dmard
methotrexate:           dmard; antifolate; immunosuppressant
sulfasalazine:          dmard
infliximab:             biologic
isotretinoin:           retinoid
itraconazole:           azole antifungal; antifungal
miconazole:             azole antifungal; antifungal
fluconazole:            azole antifungal; antifungal
nystatin:               antifungal
levothyroxine:          thyroid hormone
lithium:                mood stabiliser
metformin:              biguanide; antidiabetic
gliclazide:             sulfonylurea; antidiabetic
insulin:                antidiabetic
nifedipine:             calcium channel blocker
amlodipine:             calcium channel blocker
isosorbide:             nitrate
isosorbide mononitrate: nitrate
glyceryl trinitrate:    nitrate
gtn:                    nitrate
amyl nitrite:           nitrate; popper
sildenafil:             pde5 inhibitor
tadalafil:              pde5 inhibitor
vardenafil:             pde5 inhibitor
sumatriptan:            triptan
naratriptan:            triptan
rizatriptan:            triptan
zolmitriptan:           triptan
prednisolone:           corticosteroid; steroid
salbutamol:             beta-agonist
diazepam:               benzodiazepine
temazepam:              benzodiazepine
zopiclone:              hypnotic
pseudoephedrine:        decongestant
phenylephrine:          decongestant
xylometazoline:         decongestant
guaifenesin:            expectorant
folic acid:             vitamin
ethinylestradiol:       oestrogen; combined hormonal contraceptive
combined pill:          combined hormonal contraceptive
noradrenaline:          vasopressor
live vaccine:           vaccine
yellow fever vaccine:   live vaccine; vaccine
mmr vaccine:            live vaccine; vaccine
bcg vaccine:            live vaccine; vaccine
shingles vaccine:       vaccine
inactivated vaccine:    vaccine
flu vaccine:            inactivated vaccine; vaccine
""")

# Brand and other names -> the generic name used as the key of DRUG_CLASSES.
BRANDS: dict[str, str] = {
    "calpol": "paracetamol", "disprin": "aspirin", "nurofen": "ibuprofen", "brufen": "ibuprofen",
    "neurontin": "gabapentin", "lanoxin": "digoxin", "tegretol": "carbamazepine", "epanutin": "phenytoin",
    "cordarone": "amiodarone", "ciproxin": "ciprofloxacin", "septrin": "co-trimoxazole", "daktarin": "miconazole",
    "aldactone": "spironolactone", "zydol": "tramadol", "solpadol": "codeine", "solpadeine": "codeine",
    "co-codamol": "codeine", "cocodamol": "codeine", "viagra": "sildenafil", "cialis": "tadalafil",
    "lipitor": "atorvastatin", "zocor": "simvastatin", "clozaril": "clozapine", "priadel": "lithium",
    "camcolit": "lithium", "epilim": "valproate", "sodium valproate": "valproate", "depakote": "valproate",
    "glucophage": "metformin", "clexane": "enoxaparin", "eliquis": "apixaban", "xarelto": "rivaroxaban",
    "pradaxa": "dabigatran", "thyroxine": "levothyroxine", "zyloric": "allopurinol", "tamiflu": "oseltamivir",
    "sudafed": "pseudoephedrine", "piriton": "chlorphenamine", "valtrex": "valaciclovir",
}

# Classes so broad that advice about one member says nothing about another ("avoid codeine" does
# not contradict "ask for another painkiller"): they widen what a case is about, never a claim.
BROAD_CLASSES: frozenset[str] = frozenset({
    "painkiller", "analgesic", "antibiotic", "antidepressant", "immunosuppressant", "chemotherapy", "antiviral",
    "antifungal", "antiepileptic", "vitamin", "antidiabetic", "antiarrhythmic", "antipsychotic", "anticoagulant",
    "antiplatelet", "diuretic", "dmard", "biologic", "opioid", "anticholinergic", "vaccine",
})


# Class words that may stand for any member: a sentence naming a class is about every member.
def all_classes() -> frozenset[str]:
    return frozenset(c for classes in DRUG_CLASSES.values() for c in classes)


# Synonyms: every variant on the left is read as the canonical word on the right (after
# stemming). General medical and lay English only.
SYNONYMS: dict[str, str] = {
    "renal": "kidney", "kidneys": "kidney", "nephrotoxic": "kidney",
    "hepatic": "liver", "hepatotoxic": "liver",
    "haemorrhage": "bleed", "hemorrhage": "bleed", "bleeding": "bleed", "bleeds": "bleed",
    "discontinue": "stop", "discontinued": "stop", "cease": "stop", "withdraw": "stop", "withdrawn": "stop",
    "withhold": "stop", "halt": "stop",
    "physician": "doctor", "gp": "doctor", "clinician": "doctor",
    "medication": "medicine", "medicines": "medicine", "medications": "medicine", "tablet": "medicine",
    "tablets": "medicine", "pill": "medicine", "pills": "medicine", "drug": "medicine", "drugs": "medicine",
    "check": "monitor", "checked": "monitor", "checks": "monitor", "checking": "monitor", "measure": "monitor",
    "measured": "monitor", "test": "monitor", "tested": "monitor", "tests": "monitor", "testing": "monitor",
    "monitoring": "monitor", "monitored": "monitor", "watch": "monitor", "observe": "monitor",
    "remove": "clear", "removed": "clear", "eliminate": "clear", "eliminated": "clear", "excrete": "clear",
    "excreted": "clear", "build": "accumulate", "builds": "accumulate", "confused": "confusion",
    "tiny": "small", "minimal": "small", "sleepiness": "drowsiness", "sleepy": "drowsiness", "drowsy": "drowsiness",
    "raise": "increase", "raises": "increase", "raised": "increase", "rise": "increase", "higher": "increase",
    "elevated": "increase", "boost": "increase",
    "lower": "reduce", "lowers": "reduce", "decrease": "reduce", "cut": "reduce", "reduction": "reduce",
    "dangerous": "serious", "severe": "serious", "life-threatening": "serious", "harmful": "serious",
    "baby": "infant", "babies": "infant", "newborn": "infant", "child": "child", "children": "child",
    "pregnant": "pregnancy", "womb": "pregnancy", "fetus": "fetal", "foetus": "fetal", "foetal": "fetal",
    "unborn": "fetal",
    "breast": "breastfeed", "breastfeeding": "breastfeed", "nursing": "breastfeed", "milk": "breastfeed",
    "elderly": "older", "old": "older",
    "heartbeat": "heart", "cardiac": "heart",
    "avoided": "avoid", "avoiding": "avoid",
    "immediately": "urgent", "emergency": "urgent", "urgently": "urgent",
    "doses": "dose", "dosage": "dose", "dosing": "dose",
    "level": "level", "levels": "level", "concentration": "level",
    "sickness": "vomit", "vomiting": "vomit", "sick": "vomit",
    "poisoning": "toxicity", "toxic": "toxicity", "overdose": "toxicity",
}


# Everyday English that carries no case content: left out when the judge measures how much of a
# sentence the case's knowledge supports, so a paraphrase is not penalised for its plain words.
GENERAL_WORDS: frozenset[str] = frozenset("""
able about above across actually add added adds after again against ago almost alone along already although
always among amount another answer anything anyway apart appear around ask asked away back bad badly based
basic become becomes before begin behind being believe below best better between big bit both bring
brings called came case cases cause certain change changed changes check choose chosen clear close come
comes common commonly completely consider considered could current day days did different do does doing
done down due each early easier easily either else end enough even ever every everyone example expect
expected extra fact fall far few fewer find first follow following found free frequent full further get
gets getting give given go goes going gone good got great group half happen happens hard help here high
higher hold how however idea important include including increase instead keep kind know large last
later least left less let likely little long look looks lot low made main make makes making many matter
matters may mean means might mind minor more most mostly move much must near nearly need needed needs never
new next normal normally nothing notice now number often old once one ones only open order other others
otherwise out over own part particular people perhaps place plan point possible probably problem problems
put quickly quite rather real really reason recent reduce related remember rest result right same say
says see seem seems set several short should show side simple since small so some someone something
sometimes soon start started still such sure take taken takes taking tell than that thing things think
those though through time times today together too took toward true try turn two type under unless until
up upon use used useful uses using usual usually very want way ways well went were what whatever when
whenever where whether which while who whole why will wish with within without work worth would year
years yet
""".split())
