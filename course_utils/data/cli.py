"""The command line: ``python -m course_utils.data build [--out DIR]`` and ``... check``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Mapping, Sequence

from course_utils.paths import DATA_DIR

from .build import check_datasets, write_datasets
from .corpus import build_corpus, corpus_stats, split_corpus
from .datasets import FEATURED_SFT_SCENARIOS, build_eval_prompts, build_sft
from .knowledge import lint_scenarios, load_scenarios, load_unseen_cases
from .preferences import ANNOTATORS, build_preferences, preference_stats
from .schema import DataError, _display_path
from .vocabulary import CATEGORIES, FLAWS, UNSEEN_FILE


def _summary(scenarios: Sequence[Mapping], seed: int = 0, featured: Sequence[str] = FEATURED_SFT_SCENARIOS) -> str:
    """What `build` prints after writing: the sizes of the datasets, flaws, votes and splits."""
    corpus = corpus_stats(build_corpus(scenarios, seed=seed))
    sft = build_sft(scenarios, featured=featured)
    prefs = build_preferences(scenarios, seed=seed, featured_scenarios=featured)
    st = preference_stats(prefs)
    flaws = {f: sum(p["flaw"] == f for p in prefs) for f in FLAWS}
    return "\n".join([
        f"scenarios: {len(scenarios)} ("
        + ", ".join(f"{c} {sum(s['category'] == c for s in scenarios)}" for c in CATEGORIES) + ")",
        f"corpus: {corpus['words']} words, {corpus['passages']} passages, "
        f"{corpus['distinct_sentences']} distinct sentences",
        f"sft: {len(sft)} demonstrations, {sum(r['featured'] for r in sft)} featured",
        f"preferences: {len(prefs)} pairs ({st['test_share']:.0%} test), {sum(p['featured'] for p in prefs)} featured; "
        + ", ".join(f"{f} {n}" for f, n in flaws.items()),
        f"votes: split {st['split_vote_share']:.1%}, majority for rejected {st['majority_rejected_share']:.1%}, "
        f"chosen longer {st['chosen_longer_share']:.1%}; accuracy "
        + ", ".join(f"{a.name} {st['accuracy_' + a.name]:.1%}" for a in ANNOTATORS),
        f"eval prompts: {len(build_eval_prompts(scenarios))}",
        f"corpus split: {corpus_stats(split_corpus(build_corpus(scenarios, seed=seed))[1])['words']} validation words "
        "(sentences also in training removed)",
    ])


def main(argv: Sequence[str] | None = None) -> int:
    """``build [--out DIR]`` or ``check``; returns the exit status."""
    package_doc = sys.modules[__package__].__doc__  # the first line of the package docstring
    parser = argparse.ArgumentParser(prog="python -m course_utils.data", description=package_doc.splitlines()[0])
    parser.add_argument("--scenarios", type=Path, default=None, help="knowledge base (default data/scenarios.jsonl)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--featured", default=",".join(FEATURED_SFT_SCENARIOS),
                        help="comma-separated ids of the featured scenarios (default FEATURED_SFT_SCENARIOS)")
    sub = parser.add_subparsers(dest="command", required=True)
    build = sub.add_parser("build", help="write corpus.txt, sft.jsonl, preferences.jsonl, eval_prompts.jsonl")
    build.add_argument("--out", type=Path, default=DATA_DIR, help="output directory (default data/)")
    check = sub.add_parser("check", help="exit 1 if the committed datasets differ from a fresh build")
    check.add_argument("--data", type=Path, default=DATA_DIR, help="directory to check (default data/)")
    args = parser.parse_args(argv)
    try:
        scenarios = load_scenarios(args.scenarios)
        unseen_path = (args.scenarios.parent if args.scenarios else DATA_DIR) / UNSEEN_FILE
        unseen = load_unseen_cases(unseen_path) if unseen_path.exists() else []
    except DataError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    featured = tuple(i.strip() for i in args.featured.split(",") if i.strip())
    for finding in lint_scenarios(scenarios):
        print(f"warning: {finding}", file=sys.stderr)
    if args.command == "build":
        for path in write_datasets(args.out, scenarios, seed=args.seed, featured=featured, unseen=unseen).values():
            print(f"wrote {_display_path(path)}")
        print(_summary(scenarios, seed=args.seed, featured=featured))
        return 0
    problems = check_datasets(args.data, scenarios, seed=args.seed, featured=featured, unseen=unseen)
    if problems:
        print("The datasets are out of date:\n" + "\n".join(problems), file=sys.stderr)
        return 1
    print("datasets match a fresh build")
    return 0
