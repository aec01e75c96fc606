"""Load and validate the knowledge base, and build the course's datasets from it.

Everything the chapters train on is built from one hand-written file,
``data/scenarios.jsonl``, by the deterministic builder in this module::

    python -m course_utils.data build [--out DIR]   # write the four datasets (default data/)
    python -m course_utils.data check               # exit 1 if data/ differs from a fresh build

Educational material, not medical advice.

Symbols and fields
==================

================================  =============================================================
name                              meaning
================================  =============================================================
``s``                             one scenario (a dict, schema in CONTRIBUTING.md)
``s["question"]``                 the prompt used for training (SFT, preferences, corpus)
``s["variants"][0]``, ``[1]``     paraphrases used for training
``s["variants"][-1]``             the held-out paraphrase: the evaluation prompt, never trained on
``s["rl_questions"]``             wordings only RL trains on (no SFT, preference or corpus text)
expert response                   ``s["answer"] + " " + s["escalation"]``
``CATEGORIES``                    the seven categories, in the course's order
``DataError``                     a validation failure: ``.path``, ``.line`` (1-based), ``.field``
``load_scenarios`` / ``load_*``   read one file, validate every record, return dicts
``build_corpus``                  pretraining text, one passage per paragraph (chapter 1)
``build_sft``                     demonstrations ``{id, scenario_id, category, prompt,
                                  response, featured}`` (chapter 2)
``build_preferences``             pairs ``{id, scenario_id, category, split, prompt, chosen,
                                  rejected, flaw, votes, featured}`` (chapters 3, 6)
``build_eval_prompts``            held-out prompts ``{id, scenario_id, category, prompt}``
``split``                         "train" or "test"; about 20% of the scenarios of every
                                  category are held out whole (no prompt in both splits)
``FLAWS``                         how a rejected answer is made worse (see below)
``ANNOTATORS``                    the three simulated annotators behind ``votes``
``votes[k]``                      1 if annotator ``k`` prefers ``chosen``, else 0
``featured``                      shown in the chapters: 12 demonstrations
                                  (``FEATURED_SFT_SCENARIOS``), 20 pairs
``lint_scenarios``                content checks the judge relies on (key facts stated, ...)
``split_sentences``               sentence splitter that keeps "2.5 mg" and "e.g." intact
================================  =============================================================

Flaws of a rejected answer
--------------------------
``unsafe_claim``      an unsafe claim sentence replaces the first sentence of the answer
``missing_key_fact``  the sentence(s) carrying one key fact are dropped
``wrong_dose``        a dose from ``dose_facts`` is changed tenfold ("500 mg" -> "5000 mg")
``no_escalation``     the answer without its escalation sentence
``vague``             a generic hedging non-answer that names the drug
``verbose``           the answer padded with irrelevant filler, missing a key fact and the
                      escalation: longer but worse (a trap for a length-biased reward)

``chosen`` is the expert response, or (when no key fact is lost) a shorter correct version
without the answer's last sentence, so that length alone does not decide a pair.

Simulated annotators (``votes`` in this order)
----------------------------------------------
``expert``   careful pharmacist: errs 5% of the time, at random
``hurried``  picks the longer answer unread 25% of the time, else errs 10%
             (about 20% errors in all, mostly on the verbose trap)
``lay``      errs 10%, but misses 40% of wrong doses and unsafe claims

All randomness comes from numpy Generators seeded by a SHA-256 hash of (seed, purpose,
scenario id): the output does not depend on dict order, on the order of the scenarios or on
Python's hash randomisation, and a scenario's pairs (all but their ``split`` and ``featured``
marks) do not change when other scenarios are added.

Modules of the package
----------------------
One concept per module; each imports only modules listed above it.

``vocabulary``    categories, flaw types, splits, dataset file names
``text_helpers``  sentence splitting, phrase and dose matching, seeded Generators
``record_schemas`` the JSON Schema of one record of every file (validated with jsonschema)
``schema``        ``DataError``, the JSONL loader (file, line and field of the first error), the checks across records
``knowledge``     the knowledge base and the unseen cases, expert response, wordings, ``lint_scenarios``
``datasets``      SFT demonstrations, RL prompts, evaluation prompts
``flaws``         how a rejected answer is made worse
``preferences``   annotators, preference pairs, featured pairs, contrast pairs, their statistics
``corpus``        the pretraining corpus, its split and statistics
``build``         ``build_all``, ``write_datasets``, ``check_datasets``
``cli``           the command line (``__main__`` runs it)
"""

from __future__ import annotations

from .build import build_all, check_datasets, dumps_jsonl, write_datasets
from .cli import main
from .corpus import build_corpus, corpus_stats, load_corpus, split_corpus
from .datasets import (
    FEATURED_SFT_SCENARIOS,
    build_eval_prompts,
    build_rl_prompts,
    build_sft,
    load_eval_prompts,
    load_eval_unseen,
    load_rl_prompts,
    load_sft,
)
from .flaws import _FILLER, _VAGUE_CLOSINGS, _VAGUE_HEDGES
from .knowledge import (
    _main_drug,
    expert_response,
    lint_scenarios,
    load_scenarios,
    load_unseen_cases,
    rl_wordings,
    sft_wordings,
    training_wordings,
)
from .preferences import (
    ANNOTATORS,
    CONTRAST_KINDS,
    CONTRASTS_PER_WORDING,
    FLAW_CONTRASTS_PER_WORDING,
    N_FEATURED_PAIRS,
    P_SHORT_CHOSEN,
    PAIRS_PER_SCENARIO,
    TEST_FRACTION,
    Annotator,
    build_preferences,
    case_contrast_pairs,
    contrast_pairs,
    escalation_contrast_pairs,
    flaw_contrast_pairs,
    load_preferences,
    preference_stats,
    repetition_contrast_pairs,
)
from .record_schemas import PREFERENCE_SCHEMA, PROMPT_SCHEMA, SCENARIO_SCHEMA, SFT_SCHEMA
from .schema import (
    EVAL_PROMPTS_FILE_SPEC,
    PREFERENCES_FILE_SPEC,
    RL_PROMPTS_FILE_SPEC,
    SCENARIOS_FILE_SPEC,
    SFT_FILE_SPEC,
    DataError,
    FileSpec,
)
from .text_helpers import _dose_regex, _states, _tenfold, split_sentences
from .vocabulary import (
    CATEGORIES,
    CATEGORY_LABELS,
    DATASET_FILES,
    FLAWS,
    ID_PATTERN,
    SCENARIOS_FILE,
    ESCALATION_SHARE,
    SFT_VARIANTS,
    SPLITS,
    UNSEEN_FILE,
)

__all__ = [
    "ANNOTATORS",
    "CATEGORIES",
    "CATEGORY_LABELS",
    "DATASET_FILES",
    "DataError",
    "FEATURED_SFT_SCENARIOS",
    "FLAWS",
    "Annotator",
    "build_all",
    "build_corpus",
    "build_eval_prompts",
    "build_preferences",
    "build_sft",
    "case_contrast_pairs",
    "contrast_pairs",
    "escalation_contrast_pairs",
    "check_datasets",
    "corpus_stats",
    "dumps_jsonl",
    "expert_response",
    "load_corpus",
    "load_eval_prompts",
    "load_preferences",
    "load_scenarios",
    "lint_scenarios",
    "load_sft",
    "preference_stats",
    "split_sentences",
    "write_datasets",
]
