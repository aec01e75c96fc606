"""The committed model checkpoints, and the one command that rebuilds them.

    python -m course_utils.checkpoints build     # rewrite data/checkpoints/ (a few minutes)
    python -m course_utils.checkpoints check     # rebuild in a temporary folder and compare (make check-checkpoints)

Every stage is trained from the previous one with fixed seeds and the default configs
that the chapters show, so a rebuild reproduces the committed files (file, stage: trained by):

* tokenizer.json, word-level vocabulary: ``VocabularyTokenizer.fit`` on the training texts
* base.npz, pretrained TinyGPT (chapter 1): ``training.pretrain`` on ``data/corpus.txt``
* sft.npz, SFT policy (chapter 2): ``training.sft`` on ``data/sft.jsonl``, from base
* reward.npz, reward model (chapter 3): ``reward.train_reward_model`` on the train split of
  ``data/preferences.jsonl`` and ``data.case_contrast_pairs``, from sft
* ppo.npz, PPO policy (chapter 5): ``ppo.train_ppo`` against the reward model, from sft
* experiments.npz, chapter-6 results: ``challenges.build_experiments_cache`` (PPO at several β,
  noisy labels, shift, scale)
* scorecard.npz, chapter-7 ablations: ``ablations.build_scorecard_cache`` (PPO from base, PPO on
  a noisy reward model)

The chapter-7 ablations (``SIDE_STAGES``) read only base, sft and reward, so ``build`` trains them in
a second process beside ppo, beyond and experiments; ``BUILD_INFO.json`` records each stage's
seconds and the ``total``, which is less than their sum.

Later chapters call :func:`load` so each notebook runs standalone in a fresh kernel.

Reproducibility. Training is chaotic: a matrix product summed in another order (another
BLAS kernel, thread count or numpy build) changes the last bits of a float32 result, and a
training run amplifies that. ``build`` therefore records, next to the checkpoints, the
numerical environment it ran in and the headline metrics of what it built
(``BUILD_INFO.json``). ``check`` rebuilds in a temporary folder and

* requires every array and file to be **bit-identical** when its environment matches the
  recorded one (same numpy, BLAS library, version, kernel and thread count, same CPU
  architecture);
* otherwise compares the **metrics**, each within its stated tolerance (``TOLERANCES``),
  and lists the largest weight differences for information.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_info

from . import data
from .beyond import build_beyond_cache
from .challenges import build_experiments_cache
from .model import TinyGPT
from .paths import CHECKPOINT_DIR, LOG_DIR_NAME, committed_file, save_log
from .ppo import build_ppo_checkpoint
from .progress import Progress
from .runtime import ForkedCall
from .reward import build_reward_checkpoint, evaluate_pairs, load_reward_model
from .sampling import sample_answers
from .ablations import build_scorecard_cache
from .tokenizer import VocabularyTokenizer
from .training import (PretrainConfig, SFTConfig, corpus_stream, window_loss, new_model, pretrain, response_loss,
                       sft)

SEED = 0
STORAGE = "float16"     # committed weights are stored in half precision (half the size; see TinyGPT.save)

# The reference recipe: what `make checkpoints` trains, larger and longer than the chapters'
# live runs (which use the configs' defaults, sized for a chapter's time budget). The scale was
# chosen by measurement (benchmarks/sweep_scale.py): a wider, deeper model pretrained five
# times longer answers the held-out questions about the right case far more often; more SFT
# epochs than 20 gained nothing (the model memorises the training wordings); replacing 20 % of
# the prompt words by <unk> in each SFT batch (word dropout) did.
REFERENCE_MODEL: dict = {"d_model": 96, "n_layers": 3, "n_heads": 4}
REFERENCE_PRETRAIN = PretrainConfig(steps=2000, warmup=100, eval_every=100, seed=SEED)
REFERENCE_SFT = SFTConfig(epochs=20, prompt_dropout=0.2, seed=SEED)


def training_texts() -> list[str]:
    """The texts the vocabulary is fitted on: the corpus and the SFT demonstrations."""
    texts = [p for p in data.load_corpus().split("\n\n") if p.strip()]
    for d in data.load_sft():
        texts += [d["prompt"], d["response"]]
    return texts


def build_tokenizer() -> VocabularyTokenizer:
    return VocabularyTokenizer.fit(training_texts())


def corpus_split(tok: VocabularyTokenizer, val_fraction: float = PretrainConfig().val_fraction):
    """The pretraining token streams: (training, validation), the validation text sharing no
    sentence with the training text (``data.split_corpus``)."""
    train_text, val_text = data.split_corpus(data.load_corpus(), val_fraction)
    return corpus_stream(tok, train_text), corpus_stream(tok, val_text)


def load_log(stage: str, directory: Path = CHECKPOINT_DIR):
    """The reference run's training log of ``stage`` (``base``, ``sft``, ``reward``, ``ppo``, ...)."""
    path = committed_file(directory, f"{LOG_DIR_NAME}/{stage}.csv")
    return pd.read_csv(path)


def build_base_checkpoint(tok: VocabularyTokenizer, out_dir: Path, progress: bool = False) -> TinyGPT:
    """Chapter 1's reference model: ``REFERENCE_PRETRAIN`` on a ``REFERENCE_MODEL`` from seed
    ``SEED``; writes ``base.npz`` (float16) and ``logs/base.csv``, returns the model as saved."""
    cfg = REFERENCE_PRETRAIN
    train, val = corpus_split(tok, cfg.val_fraction)
    model = new_model(tok, seed=SEED, **REFERENCE_MODEL)
    history = pretrain(model, train, val, cfg, progress=progress)
    model.save(Path(out_dir) / "base.npz", storage=STORAGE)
    save_log(history.log, out_dir, "base")
    return TinyGPT.load(Path(out_dir) / "base.npz")


def build_sft_checkpoint(tok: VocabularyTokenizer, base: TinyGPT, out_dir: Path, progress: bool = False) -> TinyGPT:
    """Chapter 2's reference model: ``REFERENCE_SFT`` on the demonstrations, from base;
    writes ``sft.npz`` and ``logs/sft.csv``."""
    model = base.copy()
    history = sft(model, tok, data.load_sft(), REFERENCE_SFT, progress=progress)
    model.save(Path(out_dir) / "sft.npz", storage=STORAGE)
    save_log(history.log, out_dir, "sft")
    return TinyGPT.load(Path(out_dir) / "sft.npz")


# The stages after SFT, in build order: (name, function(tokenizer, out_dir, progress) -> path written).
LATER_STAGES: list[tuple[str, Callable[..., Path]]] = [
    ("reward", build_reward_checkpoint),         # chapter 3: reward.npz
    ("ppo", build_ppo_checkpoint),               # chapter 5: ppo.npz
    ("beyond", build_beyond_cache),              # chapter 8: DPO, GRPO, best-of-n, beyond.npz
    ("experiments", build_experiments_cache),    # chapter 6: experiments.npz
    ("scorecard", build_scorecard_cache),        # chapter 7: the ablations, scorecard.npz
]
# Stages that read only base, sft and reward (never what the stages after reward write) and run
# on one BLAS thread throughout: ``build`` runs them in a second process beside ppo, beyond and
# experiments, which saves minutes on two cores and changes no result.
SIDE_STAGES: tuple[str, ...] = ("scorecard",)


def _side_stage(fn: Callable[..., Path], out_dir: Path) -> tuple[Path, float]:
    """Run one stage of :data:`SIDE_STAGES` (in the second process): the path it wrote and its seconds."""
    t0 = time.perf_counter()
    path = fn(load_tokenizer(out_dir), out_dir, progress=False)
    return path, round(time.perf_counter() - t0, 1)


BUILD_INFO = "BUILD_INFO.json"


def fingerprint() -> dict:
    """The numerical environment a build ran in: what makes float results bit-reproducible."""
    blas = [{k: str(lib.get(k)) for k in ("internal_api", "version", "architecture", "threading_layer", "num_threads")}
            for lib in threadpool_info() if lib.get("user_api") == "blas"]
    return {"numpy": np.__version__, "python": platform.python_version(), "machine": platform.machine(),
            "blas": blas}


class _StageClock:
    """Announces each stage with the time spent so far and the time left, estimated from the
    stage durations of the previous build (``BUILD_INFO.json``), when there is one."""

    def __init__(self, previous: dict[str, float], names: list[str], verbose: bool) -> None:
        self.previous, self.names, self.verbose = previous, names, verbose
        self.seconds: dict[str, float] = {}
        self.start = self.t = time.perf_counter()

    def next(self, name: str) -> None:
        now = time.perf_counter()
        if self.seconds or name != self.names[0]:
            self.seconds[self.names[len(self.seconds)]] = round(now - self.t, 1)
        self.t = now
        if self.verbose:
            todo = self.names[len(self.seconds):]
            left = sum(self.previous.get(n, float("nan")) for n in todo)
            est = f", about {left / 60:.0f} min left (previous build)" if left == left and todo else ""
            print(f"[{(now - self.start) / 60:5.1f} min] {name}{est}", file=sys.stderr, flush=True)

    def done(self, label: str = "done") -> dict[str, float]:
        """Close the last stage (announced as ``label``); returns the seconds of every stage."""
        self.next(label)
        return self.seconds


def build(out_dir: Path = CHECKPOINT_DIR, stages: tuple[str, ...] | None = None, progress: bool = False) -> list[Path]:
    """Train every stage in order and write the checkpoints to ``out_dir``; returns the files written.

    The stages of :data:`SIDE_STAGES` start in a forked second process as soon as the reward model
    is written and run beside the others (``runtime.ForkedCall``; Linux only, and where no second
    process can be forked they run here, last). Every stage is seeded and reads only files written
    before it starts, so the files are the same either way. With ``progress``, each stage is announced
    on stderr with the time spent and an estimate of the time left, and the training loops print
    their progress there (a side stage's do not)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    try:
        previous = json.loads((out_dir / BUILD_INFO).read_text(encoding="utf-8")).get("seconds", {})
    except (OSError, ValueError):
        previous = {}
    later = [s for s in LATER_STAGES if stages is None or s[0] in stages]
    side = [s for s in later if s[0] in SIDE_STAGES]
    main = [s for s in later if s[0] not in SIDE_STAGES]
    clock = _StageClock(previous, ["tokenizer", "base", "sft"] + [s[0] for s in main], progress)
    tok = _build_first_stages(out_dir, clock, progress)
    written = [out_dir / "tokenizer.json", out_dir / "base.npz", out_dir / "sft.npz"]
    forked = None
    for name, build_stage in main:
        clock.next(name)
        written.append(build_stage(tok, out_dir, progress=progress))
        if name == "reward" and side:
            forked = _start_side(side, out_dir, clock, progress)
    seconds = clock.done("waiting for the second process" if forked is not None else "done")
    done = None
    if forked is not None:
        with forked:
            done = forked.result()
    if side and done is None:                 # not forked, or the child failed: build them here
        if progress:
            print(f"{', '.join(n for n, _ in side)}: built here", file=sys.stderr, flush=True)
        done = _side_stages([fn for _, fn in side], out_dir)
    for (name, _), (path, secs) in zip(side, done or []):
        written.append(path)
        seconds[name] = secs
    seconds["total"] = round(time.perf_counter() - clock.start, 1)
    if progress and forked is not None:
        print(f"[{seconds['total'] / 60:5.1f} min] done", file=sys.stderr, flush=True)
    if stages is None:
        info = {"environment": fingerprint(), "metrics": metrics(out_dir), "seconds": seconds}
        (out_dir / BUILD_INFO).write_text(json.dumps(info, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        written.append(out_dir / BUILD_INFO)
    return written


def _build_first_stages(out_dir: Path, clock: _StageClock, progress: bool) -> VocabularyTokenizer:
    """The tokenizer, the base model and the SFT model, in that order; returns the tokenizer."""
    clock.next("tokenizer")
    tok = build_tokenizer()
    tok.save(out_dir / "tokenizer.json")
    clock.next("base")
    base = build_base_checkpoint(tok, out_dir, progress)
    clock.next("sft")
    build_sft_checkpoint(tok, base, out_dir, progress)
    return tok


def _start_side(side: list[tuple[str, Callable[..., Path]]], out_dir: Path, clock: _StageClock,
                progress: bool) -> ForkedCall:
    """Start the side stages, one after the other, in a forked second process."""
    if progress:
        est = sum(clock.previous.get(n, float("nan")) for n, _ in side)
        print(f"{', '.join(n for n, _ in side)} started in a second process"
              + (f" (about {est / 60:.0f} min)" if est == est else ""), file=sys.stderr, flush=True)
    return ForkedCall(_side_stages, [fn for _, fn in side], out_dir)


def _side_stages(fns: list[Callable[..., Path]], out_dir: Path) -> list[tuple[Path, float]]:
    return [_side_stage(fn, out_dir) for fn in fns]


# The headline result of each stage, and how far a rebuild on another machine may land from
# the committed value. The tolerances are a few times the spread between training seeds.
TOLERANCES: dict[str, float] = {
    "base_val_loss": 0.05,          # nats per token on the corpus validation split
    "sft_heldout_loss": 0.10,       # nats per token of the expert answers to the held-out wordings
    "reward_test_accuracy": 0.06,   # share of held-out preference pairs ranked right
    "ppo_heldout_reward": 1.0,      # reward-model score of the greedy answers to held-out questions
}


def metrics(directory: Path = CHECKPOINT_DIR) -> dict[str, float]:
    """The headline metric of every stage in ``directory`` (see ``TOLERANCES``), rounded to 4 digits."""
    tok = load_tokenizer(directory)
    cfg = PretrainConfig()
    _, val = corpus_split(tok, cfg.val_fraction)
    scenarios = {s["id"]: s for s in data.load_scenarios()}
    held_out = [{"prompt": e["prompt"], "response": data.expert_response(scenarios[e["scenario_id"]])}
                for e in data.load_eval_prompts()]
    rm = load_reward_model(directory)
    test_pairs = [p for p in data.load_preferences() if p["split"] == "test"]
    prompts = [h["prompt"] for h in held_out]
    out = {
        "base_val_loss": window_loss(load("base", directory), val, cfg.seq_len),
        "sft_heldout_loss": response_loss(load("sft", directory), tok, held_out),
        "reward_test_accuracy": evaluate_pairs(rm, tok, test_pairs)["accuracy"],
        "ppo_heldout_reward": float(rm.score(tok, prompts,
                                             sample_answers(load("ppo", directory), tok, prompts)).mean()),
    }
    return {k: round(float(v), 4) for k, v in out.items()}


def check(directory: Path = CHECKPOINT_DIR, rebuilt: Path | None = None) -> tuple[bool, list[str]]:
    """Rebuild (or take ``rebuilt``) and compare with ``directory``; returns (passed, report lines)."""
    committed = json.loads((Path(directory) / BUILD_INFO).read_text(encoding="utf-8"))
    with tempfile.TemporaryDirectory() as tmp:
        new_dir = Path(rebuilt) if rebuilt is not None else Path(tmp)
        if rebuilt is None:
            build(new_dir)
        new = json.loads((new_dir / BUILD_INFO).read_text(encoding="utf-8"))
        differences = compare(directory, new_dir, exact=True, skip=(BUILD_INFO,))
    lines = []
    if new["environment"] == committed["environment"]:
        lines.append("same numerical environment as the committed build: every file must be bit-identical")
        lines += differences or ["every file is bit-identical"]
        return not differences, lines
    lines.append("a different numerical environment from the committed build:")
    for key in sorted(set(committed["environment"]) | set(new["environment"])):
        a, b = committed["environment"].get(key), new["environment"].get(key)
        if a != b:
            lines.append(f"  {key}: committed {a}, here {b}")
    lines.append(f"weights: {len(differences)} array(s) differ (expected: training is chaotic)")
    passed = True
    for name, tol in TOLERANCES.items():
        a, b = committed["metrics"].get(name), new["metrics"].get(name)
        ok = a is not None and b is not None and abs(a - b) <= tol
        passed &= ok
        lines.append(f"  {name}: committed {a}, rebuilt {b}, tolerance ±{tol}: {'ok' if ok else 'OUT OF TOLERANCE'}")
    return passed, lines




def load_tokenizer(directory: Path = CHECKPOINT_DIR) -> VocabularyTokenizer:
    return VocabularyTokenizer.load(Path(directory) / "tokenizer.json")


def load(name: str, directory: Path = CHECKPOINT_DIR, dtype: str | None = None) -> TinyGPT:
    """Load a committed TinyGPT checkpoint: ``"base"``, ``"sft"`` or ``"ppo"``.

    ``dtype="float64"`` evaluates the float32 weights in double precision: what the notebooks
    print from a checkpoint is then the same on every CPU and BLAS kernel (a float32 logit
    can differ in its last bits between kernels, enough to flip a near-tie in decoding).
    """
    path = committed_file(directory, f"{name}.npz")
    return TinyGPT.load(path, dtype)


def compare(dir_a: Path, dir_b: Path, rtol: float = 1e-4, atol: float = 1e-5, exact: bool = False,
            skip: tuple[str, ...] = ()) -> list[str]:
    """Differences between two checkpoint folders (empty list = the same up to float tolerance,
    or bit for bit with ``exact=True``); files named in ``skip`` are not compared."""
    if exact:
        rtol = atol = 0.0
    problems = []
    def listing(d: Path) -> list[str]:
        return sorted(str(p.relative_to(d)) for p in Path(d).rglob("*")
                      if p.suffix in {".npz", ".json", ".csv"} and p.name not in skip)

    files_a, files_b = listing(Path(dir_a)), listing(Path(dir_b))
    if files_a != files_b:
        problems.append(f"different files: {files_a} vs {files_b}")
    for name in sorted(set(files_a) & set(files_b)):
        a, b = Path(dir_a) / name, Path(dir_b) / name
        if a.suffix in (".json", ".csv"):
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
                elif x.dtype.kind in "fc" and not (np.array_equal(x, y, equal_nan=True) if exact
                                                   else np.allclose(x, y, rtol=rtol, atol=atol)):
                    problems.append(f"{name}:{key}: max difference {np.max(np.abs(x - y)):.3g}")
                elif x.dtype.kind not in "fc" and not np.array_equal(x, y):
                    problems.append(f"{name}:{key}: values differ")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m course_utils.checkpoints", description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["build", "check"])
    args = parser.parse_args(argv)
    if args.command == "build":
        Progress.terminal = True
        for p in build(progress=True):
            print(f"wrote {p.relative_to(CHECKPOINT_DIR.parent.parent)}")
        return 0
    passed, lines = check()
    print("\n".join(lines))
    print("checkpoints reproduce" if passed else "checkpoints do NOT reproduce")
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
