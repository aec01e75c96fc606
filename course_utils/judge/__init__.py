"""The gold judge: a transparent rubric that plays the expert pharmacist.

Every answer is scored against one scenario of the knowledge base (schema in CONTRIBUTING.md).
Nothing is learned: each score is a rule a student can check by hand, and every verdict carries
the evidence (which sentence stated which fact, which claim was harmful and why, which dose was
wrong). Later chapters compare this judge with the learned reward model that PPO optimises;
where the two disagree, the policy has found a way to please the proxy without pleasing the
pharmacist (reward hacking). Educational material, not medical advice.

One concept per module, read in this order:

===============  ==============================================================================
``text``         normalised tokens, sentences, clauses, negation, stems and synonyms
``lexicon``      drug names and classes, synonyms, everyday words: the judge's vocabulary
``claims``       what a text advises about each drug, test and kind of care (entity, polarity)
``doses``        the numbers a text states, per day where a schedule is given, checked
``support``      what the judge knows of a scenario; which sentences it supports; key facts
``rubric``       the points, the five metrics, ``Verdict``, ``judge_answer``, ``judge_many``
===============  ==============================================================================

Symbols
=======

=======  =====================================================================================
``a``    the answer, cut into sentences ``a_1 .. a_n`` (``text.sentences``)
``s``    the scenario (a dict; schema in CONTRIBUTING.md)
``F``    ``s["key_facts"]``; a fact is *stated* when a supported sentence of ``a`` states it
``P``    the positive points available: 3 per key fact + 3 for the escalation
``E``    the points earned; ``C`` the costs (harmful advice, unsupported sentences, overclaims)
``o``    ``overall = clip((E - C) / P, 0, 1)``
=======  =====================================================================================
"""

from .doses import Dose, DoseCheck, extract_doses
from .rubric import (HARM_SHARE, JUDGE_COLUMNS, METRICS, OVERCLAIM_COST, OVERCLAIM_PHRASES, POINTS, TARGETS,
                     UNSUPPORTED_COST, Verdict, judge_answer, judge_many, rubric_points)
from .support import knowledge_of
from .text import normalize

__all__ = [
    "HARM_SHARE", "JUDGE_COLUMNS", "METRICS", "OVERCLAIM_COST", "OVERCLAIM_PHRASES", "POINTS", "TARGETS",
    "UNSUPPORTED_COST", "Dose", "DoseCheck", "Verdict", "extract_doses", "judge_answer", "judge_many",
    "knowledge_of", "normalize", "rubric_points",
]
