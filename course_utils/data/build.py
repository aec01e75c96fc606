"""Writing the datasets and checking the committed ones against a fresh build."""

from __future__ import annotations

import difflib
import json
from pathlib import Path
from typing import Iterable, Mapping, Sequence

from .corpus import build_corpus
from .datasets import FEATURED_SFT_SCENARIOS, build_eval_prompts, build_rl_prompts, build_sft
from .preferences import build_preferences
from .vocabulary import DATASET_FILES


def dumps_jsonl(records: Iterable[Mapping]) -> str:
    """One JSON object per line (UTF-8 text, not escaped), with a trailing newline."""
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)


def build_all(
    scenarios: Sequence[Mapping], seed: int = 0, featured: Sequence[str] = FEATURED_SFT_SCENARIOS,
    unseen: Sequence[Mapping] = (),
) -> dict[str, str]:
    """The text of every dataset file, keyed by file name (``corpus.txt``, ``sft.jsonl``, ...)."""
    return {
        DATASET_FILES["corpus"]: build_corpus(scenarios, seed=seed, unseen=unseen),
        DATASET_FILES["eval_unseen"]: dumps_jsonl(build_eval_prompts(unseen)),
        DATASET_FILES["sft"]: dumps_jsonl(build_sft(scenarios, featured=featured)),
        DATASET_FILES["rl_prompts"]: dumps_jsonl(build_rl_prompts(scenarios)),
        DATASET_FILES["preferences"]: dumps_jsonl(build_preferences(scenarios, seed=seed, featured_scenarios=featured)),
        DATASET_FILES["eval_prompts"]: dumps_jsonl(build_eval_prompts(scenarios)),
    }


def write_datasets(
    out_dir: str | Path, scenarios: Sequence[Mapping], seed: int = 0, featured: Sequence[str] = FEATURED_SFT_SCENARIOS,
    unseen: Sequence[Mapping] = (),
) -> dict[str, Path]:
    """Build every dataset and write it into ``out_dir``; return the paths written."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = {}
    for name, content in build_all(scenarios, seed=seed, featured=featured, unseen=unseen).items():
        (out / name).write_text(content, encoding="utf-8", newline="\n")
        written[name] = out / name
    return written


def check_datasets(
    data_dir: str | Path,
    scenarios: Sequence[Mapping],
    seed: int = 0,
    featured: Sequence[str] = FEATURED_SFT_SCENARIOS,
    context: int = 3,
    unseen: Sequence[Mapping] = (),
) -> list[str]:
    """Compare the files in ``data_dir`` with a fresh build; return one summary per differing file."""
    problems = []
    for name, expected in build_all(scenarios, seed=seed, featured=featured, unseen=unseen).items():
        path = Path(data_dir) / name
        if not path.exists():
            problems.append(f"{name}: missing (run `python -m course_utils.data build`)")
            continue
        actual = path.read_bytes().decode("utf-8", errors="replace")
        if actual == expected:
            continue
        exp_lines, act_lines = expected.splitlines(), actual.splitlines()
        changed = sum(a != b for a, b in zip(exp_lines, act_lines)) + abs(len(exp_lines) - len(act_lines))
        first = next((i for i, (a, b) in enumerate(zip(exp_lines, act_lines)) if a != b),
                     min(len(exp_lines), len(act_lines)))
        diff = list(difflib.unified_diff(act_lines, exp_lines, "committed", "fresh build", n=0, lineterm=""))
        shown = [d if len(d) <= 160 else d[:157] + "..." for d in diff[2: 2 + 2 * context + 1]]
        problems.append(
            f"{name}: differs from a fresh build: {changed} line(s) changed, first at line {first + 1} "
            f"({len(act_lines)} committed vs {len(exp_lines)} built lines)\n    " + "\n    ".join(shown)
        )
    return problems
