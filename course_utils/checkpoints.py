"""The committed model checkpoints, and the one command that rebuilds them.

    python -m course_utils.checkpoints build     # rewrite data/checkpoints/ (a few minutes)
    python -m course_utils.checkpoints check     # rebuild in a temporary folder and compare

Every stage is trained from the previous one with fixed seeds and the default configs
that the chapters show, so a rebuild reproduces the committed files:

| file | stage | trained by |
|---|---|---|
| tokenizer.json | word-level vocabulary | ``VocabularyTokenizer.fit`` on the training texts |
| base.npz | pretrained TinyGPT (chapter 1) | ``training.pretrain`` on ``data/corpus.txt`` |
| sft.npz | SFT policy (chapter 2) | ``training.sft`` on ``data/sft.jsonl``, from base |
| reward.npz | reward model (chapter 3) | ``reward.train_reward_model`` on the train split of ``data/preferences.jsonl``, from sft |
| ppo.npz | PPO policy (chapter 5) | ``ppo.train_ppo`` against the reward model, from sft |
| experiments.npz | chapter-6 results | ``experiments.build_experiments_cache`` (PPO at several β, noisy labels, shift, scale) |
| scorecard.npz | chapter-7 ablations | ``scorecard.build_scorecard_cache`` (PPO from base, PPO on a noisy reward model) |

Later chapters call :func:`load` so each notebook runs standalone in a fresh kernel.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import tempfile
from pathlib import Path
from typing import Callable

import numpy as np

from . import data
from .model import TinyGPT
from .paths import CHECKPOINT_DIR
from .tokenizer import VocabularyTokenizer
from .training import PretrainConfig, SFTConfig, corpus_stream, new_model, pretrain, sft, split_stream

SEED = 0


def training_texts() -> list[str]:
    """The texts the vocabulary is fitted on: the corpus and the SFT demonstrations."""
    texts = [p for p in data.load_corpus().split("\n\n") if p.strip()]
    for d in data.load_sft():
        texts += [d["prompt"], d["response"]]
    return texts


def build_tokenizer() -> VocabularyTokenizer:
    return VocabularyTokenizer.fit(training_texts())


def build_base(tok: VocabularyTokenizer, progress: bool = False) -> TinyGPT:
    """Chapter 1's model: pretraining with ``PretrainConfig()`` from seed ``SEED``."""
    cfg = PretrainConfig(seed=SEED)
    train, val = split_stream(corpus_stream(tok, data.load_corpus()), cfg.val_fraction)
    model = new_model(tok, seed=SEED)
    pretrain(model, train, val, cfg, progress=progress)
    return model


def build_sft(tok: VocabularyTokenizer, base: TinyGPT, progress: bool = False) -> TinyGPT:
    """Chapter 2's model: SFT with ``SFTConfig()`` on every demonstration, starting from base."""
    model = base.copy()
    sft(model, tok, data.load_sft(), SFTConfig(seed=SEED), progress=progress)
    return model


def _later_stage(module: str, func: str) -> Callable:
    return getattr(importlib.import_module(f"course_utils.{module}"), func)


def build(out_dir: Path = CHECKPOINT_DIR, stages: tuple[str, ...] | None = None, progress: bool = False) -> list[Path]:
    """Train every stage in order and write the checkpoints to ``out_dir``; returns the files written."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    tok = build_tokenizer()
    tok.save(out_dir / "tokenizer.json")
    written.append(out_dir / "tokenizer.json")
    base = build_base(tok, progress)
    base.save(out_dir / "base.npz")
    written.append(out_dir / "base.npz")
    sft_model = build_sft(tok, base, progress)
    sft_model.save(out_dir / "sft.npz")
    written.append(out_dir / "sft.npz")
    for name, module, func in LATER_STAGES:
        if stages is not None and name not in stages:
            continue
        artefact = _later_stage(module, func)(tok, out_dir, progress=progress)
        written.append(artefact)
    return written


# The stages after SFT, in build order: (name, module, function(tokenizer, out_dir, progress) -> path).
LATER_STAGES: list[tuple[str, str, str]] = [
    ("reward", "reward", "build_reward_checkpoint"),            # chapter 3: reward.npz
    ("ppo", "ppo", "build_ppo_checkpoint"),                     # chapter 5: ppo.npz
    ("experiments", "experiments", "build_experiments_cache"),  # chapter 6: experiments.npz
    ("scorecard", "scorecard", "build_scorecard_cache"),        # chapter 7: the ablations, scorecard.npz
]


def load_tokenizer(directory: Path = CHECKPOINT_DIR) -> VocabularyTokenizer:
    return VocabularyTokenizer.load(Path(directory) / "tokenizer.json")


def load(name: str, directory: Path = CHECKPOINT_DIR) -> TinyGPT:
    """Load a committed TinyGPT checkpoint: ``"base"`` or ``"sft"`` (and ``"ppo"`` once chapter 5 built it)."""
    path = Path(directory) / f"{name}.npz"
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing; rebuild the checkpoints with `make checkpoints`")
    return TinyGPT.load(path)


def compare(dir_a: Path, dir_b: Path, rtol: float = 1e-4, atol: float = 1e-5) -> list[str]:
    """Differences between two checkpoint folders (empty list = the same up to float tolerance)."""
    problems = []
    files_a = sorted(p.name for p in Path(dir_a).iterdir() if p.suffix in {".npz", ".json"})
    files_b = sorted(p.name for p in Path(dir_b).iterdir() if p.suffix in {".npz", ".json"})
    if files_a != files_b:
        problems.append(f"different files: {files_a} vs {files_b}")
    for name in sorted(set(files_a) & set(files_b)):
        a, b = Path(dir_a) / name, Path(dir_b) / name
        if a.suffix == ".json":
            if a.read_text() != b.read_text():
                problems.append(f"{name}: contents differ")
            continue
        with np.load(a, allow_pickle=False) as za, np.load(b, allow_pickle=False) as zb:
            if sorted(za.files) != sorted(zb.files):
                problems.append(f"{name}: different arrays")
                continue
            for key in za.files:
                x, y = za[key], zb[key]
                if x.shape != y.shape:
                    problems.append(f"{name}:{key}: shape {x.shape} vs {y.shape}")
                elif x.dtype.kind in "fc" and not np.allclose(x, y, rtol=rtol, atol=atol):
                    problems.append(f"{name}:{key}: max difference {np.max(np.abs(x - y)):.3g}")
                elif x.dtype.kind not in "fc" and not np.array_equal(x, y):
                    problems.append(f"{name}:{key}: values differ")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m course_utils.checkpoints", description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["build", "check"])
    args = parser.parse_args(argv)
    if args.command == "build":
        for p in build(progress=False):
            print(f"wrote {p.relative_to(CHECKPOINT_DIR.parent.parent)}")
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        build(Path(tmp))
        problems = compare(CHECKPOINT_DIR, Path(tmp))
    for p in problems:
        print(p)
    print("checkpoints reproduce" if not problems else f"{len(problems)} difference(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
