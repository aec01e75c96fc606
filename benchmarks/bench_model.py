"""Speed and memory of TinyGPT at the chapter configuration (printed, never asserted).

    .venv/bin/python benchmarks/bench_model.py [--rounds 5] [--steps 10]

Chapter configuration: vocabulary 2000, d_model 64, 2 layers, 4 heads, sequence length 128,
batch 16, float32. Prints

* training tokens/second of a full step: forward, cross-entropy, backward, AdamW;
* generation tokens/second with and without the KV cache (1 prompt, and 16 prompts);
* peak resident memory of the process (``resource.getrusage``);
* the BLAS library and kernel that ran (threadpoolctl, if installed) and its thread count;
* when ``torch`` is importable (any environment that has numpy and torch), the same model
  and step in PyTorch eager mode on the CPU with the same number of threads and the same
  weights, and the numpy/torch speed ratio. numpy and torch steps alternate in rounds so
  that both see the same load on a shared machine; medians are reported;
* the CPU time of one step with a single thread for both (``time.thread_time``): the work
  each needs, a comparison that other processes on the machine hardly disturb.

Some machines set ``OPENBLAS_CORETYPE``, which picks an OpenBLAS kernel by name and can
halve matmul speed; this script never sets it but prints it and the kernel that ran.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from course_utils import runtime  # noqa: E402
from course_utils.losses import cross_entropy  # noqa: E402
from course_utils.model import GPTConfig, TinyGPT  # noqa: E402
from course_utils.optim import AdamW  # noqa: E402

VOCAB, D_MODEL, N_LAYERS, N_HEADS, SEQ_LEN, BATCH = 2000, 64, 2, 4, 128, 16


def blas_report() -> tuple[str, int]:
    """One line describing the BLAS threadpoolctl sees, and its thread count."""
    from threadpoolctl import threadpool_info

    blas = [i for i in threadpool_info() if i.get("user_api") == "blas"]
    if not blas:
        return "no BLAS found by threadpoolctl", os.cpu_count() or 1
    b = blas[0]
    line = (f"{b.get('internal_api')} {b.get('version')}, kernel {b.get('architecture', '?')}, "
            f"{b.get('num_threads')} threads, {Path(b.get('filepath', '?')).name}")
    return line, int(b.get("num_threads") or 1)


def peak_rss_mib() -> float:
    """Peak resident set size of this process in MiB (ru_maxrss is KiB on Linux, bytes on macOS)."""
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / 2**20 if sys.platform == "darwin" else rss / 2**10


def make_batch(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    tokens = np.random.default_rng(seed).integers(0, VOCAB, (BATCH, SEQ_LEN + 1))
    return tokens[:, :-1], tokens[:, 1:]


# ----------------------------------------------------------------------------- numpy


class NumpyTrainer:
    """forward → cross_entropy → backward → AdamW, the step of chapter 1."""

    def __init__(self) -> None:
        self.model = TinyGPT(GPTConfig(VOCAB, D_MODEL, N_LAYERS, N_HEADS, SEQ_LEN), seed=0)
        self.opt = AdamW(self.model.params, lr=1e-3, betas=(0.9, 0.95), weight_decay=0.01)
        self.x, self.y = make_batch()

    def step(self) -> float:
        loss, dlogits = cross_entropy(self.model.forward(self.x), self.y)
        self.opt.step(self.model.backward(dlogits))
        return loss


def time_steps(step, n: int, clock=time.perf_counter) -> list[float]:
    times = []
    for _ in range(n):
        t0 = clock()
        step()
        times.append(clock() - t0)
    return times


def single_thread_cpu(trainer: NumpyTrainer, torch_step, rounds: int, steps: int) -> tuple[float, float | None]:
    """Median CPU time (s) of one step with one BLAS / torch thread, numpy and torch alternating."""
    from threadpoolctl import threadpool_limits

    np_cpu, torch_cpu = [], []
    with threadpool_limits(limits=1, user_api="blas"):
        if torch_step:
            import torch
            threads = torch.get_num_threads()
            torch.set_num_threads(1)
        for _ in range(rounds):
            np_cpu += time_steps(trainer.step, steps, time.thread_time)
            if torch_step:
                torch_cpu += time_steps(torch_step, steps, time.thread_time)
        if torch_step:
            torch.set_num_threads(threads)
    return float(np.median(np_cpu)), float(np.median(torch_cpu)) if torch_cpu else None


def bench_generation(model: TinyGPT, batch: int, new_tokens: int, use_cache: bool, repeats: int = 3) -> float:
    """Generated tokens per second (best of ``repeats``), prompts of 8 tokens."""
    prompts = np.random.default_rng(1).integers(0, VOCAB, (batch, 8))
    best = float("inf")
    for r in range(repeats):
        t0 = time.perf_counter()
        model.generate(prompts, new_tokens, rng=r, use_cache=use_cache)
        best = min(best, time.perf_counter() - t0)
    return batch * new_tokens / best


# ----------------------------------------------------------------------------- torch


def make_torch_trainer(np_model: TinyGPT, threads: int):
    """The same architecture in PyTorch eager, initialised with the numpy model's weights."""
    import torch
    import torch.nn.functional as F

    torch.set_num_threads(threads)
    c, P = np_model.config, np_model.params

    def t(name):
        return torch.nn.Parameter(torch.tensor(P[name]))

    class Block(torch.nn.Module):
        def __init__(self, i: int) -> None:
            super().__init__()
            pre = f"h{i}."
            self.ln1_g, self.ln1_b = t(pre + "ln1.g"), t(pre + "ln1.b")
            self.w_qkv, self.b_qkv = t(pre + "attn.w_qkv"), t(pre + "attn.b_qkv")
            self.w_o, self.b_o = t(pre + "attn.w_proj"), t(pre + "attn.b_proj")
            self.ln2_g, self.ln2_b = t(pre + "ln2.g"), t(pre + "ln2.b")
            self.w_fc, self.b_fc = t(pre + "mlp.w_fc"), t(pre + "mlp.b_fc")
            self.w_p, self.b_p = t(pre + "mlp.w_proj"), t(pre + "mlp.b_proj")

        def forward(self, x, causal):
            B, T, D = x.shape
            h = F.layer_norm(x, (D,), self.ln1_g, self.ln1_b, 1e-5)
            q, k, v = (h @ self.w_qkv + self.b_qkv).view(B, T, 3, c.n_heads, c.d_head).permute(2, 0, 3, 1, 4)
            att = (q @ k.transpose(-1, -2)) / c.d_head**0.5
            att = att.masked_fill(causal[:T, :T], float("-inf")).softmax(-1)
            y = (att @ v).transpose(1, 2).reshape(B, T, D)
            x = x + y @ self.w_o + self.b_o
            h = F.layer_norm(x, (D,), self.ln2_g, self.ln2_b, 1e-5)
            return x + F.gelu(h @ self.w_fc + self.b_fc, approximate="tanh") @ self.w_p + self.b_p

    class GPT(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.wte, self.wpe = t("wte"), t("wpe")
            self.blocks = torch.nn.ModuleList(Block(i) for i in range(c.n_layers))
            self.lnf_g, self.lnf_b = t("ln_f.g"), t("ln_f.b")
            self.register_buffer("causal", torch.ones(c.max_len, c.max_len, dtype=torch.bool).triu(1))

        def forward(self, idx):
            x = self.wte[idx] + self.wpe[: idx.shape[1]]
            for b in self.blocks:
                x = b(x, self.causal)
            return F.layer_norm(x, (x.shape[-1],), self.lnf_g, self.lnf_b, 1e-5) @ self.wte.T

    model = GPT()
    decay = [p for n, p in model.named_parameters() if p.ndim >= 2 and n not in ("wte", "wpe")]
    no_decay = [p for n, p in model.named_parameters() if p.ndim < 2 or n in ("wte", "wpe")]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.01}, {"params": no_decay, "weight_decay": 0.0}],
                            lr=1e-3, betas=(0.9, 0.95), eps=1e-8)
    x, y = (torch.tensor(a) for a in make_batch())

    def step() -> float:
        logits = model(x)
        loss = F.cross_entropy(logits.reshape(-1, VOCAB), y.reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return loss.item()

    return step, torch.__version__


# ----------------------------------------------------------------------------- main


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5, help="alternating numpy/torch rounds")
    parser.add_argument("--steps", type=int, default=10, help="training steps per round")
    args = parser.parse_args()

    blas, threads = blas_report()
    print(f"python {platform.python_version()}, numpy {np.__version__}, {os.cpu_count()} CPUs ({platform.machine()})")
    print(f"BLAS: {blas}")
    print(f"OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE', '(not set)')}, "
          f"glibc malloc thresholds raised: {runtime.configure()}")
    print(f"load average at start: {os.getloadavg()[0]:.2f} (other processes on a {os.cpu_count()}-CPU machine "
          "slow both numpy and torch)")
    print(f"config: vocab {VOCAB}, d_model {D_MODEL}, {N_LAYERS} layers, {N_HEADS} heads, "
          f"seq len {SEQ_LEN}, batch {BATCH}, float32")

    trainer = NumpyTrainer()
    print(f"parameters: {trainer.model.n_params:,}")
    for _ in range(3):                                   # warm-up: allocations, BLAS threads
        trainer.step()

    print("\ngeneration (8-token prompts, sampling at temperature 1):")
    for batch, new in ((1, 120), (16, 120)):
        fast = bench_generation(trainer.model, batch, new, use_cache=True)
        slow = bench_generation(trainer.model, batch, new, use_cache=False)
        print(f"  batch {batch:2d}, {new} new tokens: KV cache {fast:8,.0f} tokens/s, "
              f"no cache {slow:8,.0f} tokens/s  ({fast / slow:.1f}x)")
    print(f"\npeak memory of the numpy model (ru_maxrss, training + generation): {peak_rss_mib():.0f} MiB")

    try:
        import torch  # noqa: F401
        torch_step, torch_version = make_torch_trainer(trainer.model, threads)
        for _ in range(3):
            torch_step()
    except ImportError:
        torch_step, torch_version = None, None

    np_times, torch_times = [], []
    for _ in range(args.rounds):
        np_times += time_steps(trainer.step, args.steps)
        if torch_step:
            torch_times += time_steps(torch_step, args.steps)

    tokens_per_step = BATCH * SEQ_LEN
    np_med = float(np.median(np_times))
    print(f"\ntraining step (forward + cross-entropy + backward + AdamW), median of {len(np_times)}:")
    print(f"  numpy : {np_med * 1e3:7.1f} ms/step  {tokens_per_step / np_med:9,.0f} tokens/s  "
          f"(best {min(np_times) * 1e3:.1f} ms)")
    if torch_step:
        t_med = float(np.median(torch_times))
        print(f"  torch : {t_med * 1e3:7.1f} ms/step  {tokens_per_step / t_med:9,.0f} tokens/s  "
              f"(best {min(torch_times) * 1e3:.1f} ms; torch {torch_version} eager, CPU, {threads} threads)")
        print(f"  numpy step is {t_med / np_med:.2f}x as fast as torch eager")
    else:
        print("  torch : not importable, comparison skipped")
    try:
        np_cpu, torch_cpu = single_thread_cpu(trainer, torch_step, max(2, args.rounds // 2), args.steps)
    except ImportError:
        print("\none-thread CPU time: needs threadpoolctl, skipped")
    else:
        print("\nCPU time of one training step with a single thread (thread_time; robust to other load):")
        print(f"  numpy : {np_cpu * 1e3:7.1f} ms")
        if torch_cpu is not None:
            print(f"  torch : {torch_cpu * 1e3:7.1f} ms   numpy needs {np_cpu / torch_cpu:.2f}x the CPU time of torch")
    print(f"load average at the end: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
