"""How many wordings of each question SFT needs: the SFT model of a checkpoint folder on the held-out questions.

    .venv/bin/python benchmarks/sweep_wordings.py CHECKPOINT_DIR --label "16 wordings" [--jsonl OUT]

Run once per build of ``make checkpoints`` that differs only in ``data.SFT_VARIANTS`` (and the
wordings in ``data/scenarios.jsonl``): the held-out questions (``variants[-1]``) and the RL
prompts are the same in every build, so the rows compare like with like. Prints and appends one
JSON row: the number of training wordings per case, and SFT's greedy answers scored as in
``eval_reference.py`` (share that address the case asked, medical accuracy, overall gold score,
repeated 4-grams; 95% bootstrap intervals) on the held-out questions and on the RL prompts.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from course_utils import checkpoints, data  # noqa: E402
from course_utils.sampling import sample_answers  # noqa: E402
from eval_reference import MAX_NEW, stage_report  # noqa: E402

DEFAULT_OUT = ROOT / "benchmarks" / "sweep_wordings_results.jsonl"


def sft_scores(directory: Path) -> dict:
    """SFT's held-out and RL-prompt scores from the checkpoints in ``directory`` (the data of this checkout)."""
    tok = checkpoints.load_tokenizer(directory)
    sft = checkpoints.load("sft", directory, dtype="float64")
    scen = {s["id"]: s for s in data.load_scenarios()}
    experts = {sid: data.expert_response(s) for sid, s in scen.items()}
    out = {"training_wordings": len(data.sft_wordings(next(iter(scen.values()))))}
    for name, items in (("heldout", data.load_eval_prompts()), ("rl_prompts", data.load_rl_prompts())):
        answers = sample_answers(sft, tok, [e["prompt"] for e in items], 0.0, MAX_NEW)
        out[name] = stage_report(answers, items, scen, experts)[0]
    return out


def main(argv: list[str]) -> int:
    if not argv or argv[0].startswith("--"):
        print(__doc__)
        return 2
    label = argv[argv.index("--label") + 1] if "--label" in argv else argv[0]
    path = Path(argv[argv.index("--jsonl") + 1]) if "--jsonl" in argv else DEFAULT_OUT
    row = {"label": label, **sft_scores(Path(argv[0]))}
    print(json.dumps(row))
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps(row) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
