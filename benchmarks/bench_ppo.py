"""How long one PPO iteration takes at the chapter-5 configuration, and where the time goes.

    .venv/bin/python benchmarks/bench_ppo.py [--repeat 5] [--checkpoints DIR]

One iteration = rollout generation (``TinyGPT.generate`` with the KV cache, one call per
distinct prompt length), scoring (one forward pass each of the policy with its value head,
of the frozen reference and of the reward model, then KL, rewards and GAE), and the update
epochs (forward + backward per minibatch, AdamW). Printed, never asserted. Uses the
committed checkpoints (``data/checkpoints``) unless ``--checkpoints`` names another folder;
without a reward model there it scores with a stand-in of the same size (the timing is the same).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from course_utils import checkpoints, data, ppo  # noqa: E402
from course_utils.optim import AdamW  # noqa: E402
from course_utils import runtime  # noqa: E402
from course_utils.paths import CHECKPOINT_DIR  # noqa: E402
from course_utils.training import encode_sft  # noqa: E402


def blas_info() -> str:
    try:
        from threadpoolctl import threadpool_info

        info = [f"{d.get('internal_api')} {d.get('version')} ({d.get('architecture')}, {d.get('num_threads')} threads)"
                for d in threadpool_info() if d.get("user_api") == "blas"]
        return "; ".join(info) or "unknown"
    except Exception:  # pragma: no cover - threadpoolctl is optional here
        return "unknown (threadpoolctl not available)"


def load_reward(directory: Path, sft):
    try:
        from course_utils import reward

        return reward.load_reward_model(directory), "reward.npz"
    except (ImportError, FileNotFoundError):
        class StandIn:                                   # the same trunk, a random head
            def __init__(self, trunk):
                self.trunk = trunk
                self.w = np.random.default_rng(0).standard_normal(trunk.config.d_model).astype(trunk.dtype)

            def forward(self, tokens, lengths):
                self.trunk.forward(tokens)
                return self.trunk.hidden[np.arange(len(lengths)), np.asarray(lengths) - 1] @ self.w
        return StandIn(sft.copy()), "stand-in (no reward.npz)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--checkpoints", type=Path, default=CHECKPOINT_DIR)
    args = parser.parse_args()
    runtime.configure()          # the malloc thresholds train_ppo sets; this benchmark calls rollout directly

    tok = checkpoints.load_tokenizer(args.checkpoints)
    sft = checkpoints.load("sft", args.checkpoints)
    rm, rm_name = load_reward(args.checkpoints, sft)
    cfg = ppo.DEFAULT_CONFIG
    demos = data.load_sft()
    prompt_ids = [encode_sft(tok, d["prompt"])[0] for d in demos]
    n_prompts = cfg.batch_size // cfg.samples_per_prompt

    print(f"python {platform.python_version()}, numpy {np.__version__}, BLAS: {blas_info()}")
    print(f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores "
          "(timings are only meaningful on a quiet machine)")
    print(f"model: d_model={sft.config.d_model}, n_layers={sft.config.n_layers}, V={sft.config.vocab_size}; "
          f"reward model: {rm_name}")
    print(f"config: batch {cfg.batch_size} answers ({n_prompts} prompts x {cfg.samples_per_prompt}), "
          f"max {cfg.max_new_tokens} new tokens, {cfg.ppo_epochs} epochs of minibatches of {cfg.minibatch_size}")
    for label, context in (("BLAS on one thread, as train_ppo runs it", ppo.single_threaded_blas),
                           ("BLAS with its default threads", contextlib.nullcontext)):
        parts: dict[str, list[float]] = {"generation": [], "scoring": [], "update": [], "total": []}
        lengths = []
        policy, ref = sft.copy(), sft.copy()
        head = ppo.ValueHead(policy.config.d_model, policy.dtype)
        opt = AdamW({**policy.params, **head.params}, lr=cfg.lr, weight_decay=cfg.weight_decay)
        rng = np.random.default_rng(0)
        with context():
            for _ in range(args.repeat):
                chosen = rng.choice(len(prompt_ids), n_prompts, replace=False)
                batch_ids = [prompt_ids[i] for i in np.repeat(chosen, cfg.samples_per_prompt)]
                timings: dict[str, float] = {}
                t0 = time.perf_counter()
                batch = ppo.rollout(policy, ref, rm, head, tok, batch_ids, cfg, cfg.kl_coef, rng, timings=timings)
                t1 = time.perf_counter()
                ppo.ppo_update(policy, head, opt, batch, cfg, rng)
                t2 = time.perf_counter()
                for k, v in zip(parts, (timings["generation"], timings["scoring"], t2 - t1, t2 - t0)):
                    parts[k].append(v)
                lengths.append(float(batch.answer_lens.mean()))
        total = statistics.median(parts["total"])
        print(f"one iteration, {label}: median of {args.repeat} (mean answer length "
              f"{statistics.mean(lengths):.0f} tokens)")
        for k, v in parts.items():
            med = statistics.median(v)
            share = "" if k == "total" else f"  ({100 * med / total:4.1f} %)"
            print(f"  {k:<11} {1000 * med:8.1f} ms{share}")
        print(f"  => {cfg.iterations} iterations (the chapter's run) take about {cfg.iterations * total:.0f} s")


if __name__ == "__main__":
    main()
