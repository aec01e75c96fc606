"""Process-wide runtime settings the numerical code needs, applied on purpose, never on import.

Two settings change how the whole process runs, not what it computes:

* :func:`configure` raises glibc's malloc thresholds once (``mallopt``), so the large
  temporaries a training step frees and re-allocates stay in the process instead of being
  handed back to the kernel and faulted in again. The loops that allocate them call it on
  entry: ``training.pretrain`` and ``training.sft``, ``reward.train_reward_model``,
  ``ppo.train_ppo``, ``dpo.train_dpo``, ``grpo.train_grpo`` (so ``make checkpoints`` and
  every notebook that trains get it). Importing a module changes nothing.
* :func:`single_threaded_blas` (and the decorator :func:`one_blas_thread`) runs BLAS on one
  thread for the duration of a ``with`` block (``threadpoolctl``), for code that multiplies
  small matrices.

A third helper, :class:`ForkedCall`, runs one function in a forked second process while this
one goes on (``make checkpoints`` trains chapter 7's ablations there while PPO, DPO, GRPO and
chapter 6's runs train here, and its stages sample best-of-n answers and train reward models
there while PPO runs here); where no process can be forked it runs nothing and the caller computes
the same result itself.

Neither changes a result: the malloc thresholds decide where memory comes from, not what is
computed, and the code that runs inside ``single_threaded_blas`` runs there every time.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import ctypes
import ctypes.util
import functools
import multiprocessing
import os
import sys
from collections.abc import Callable
from typing import Any

from threadpoolctl import ThreadpoolController

__all__ = ["configure", "malloc_tuned", "single_threaded_blas", "one_blas_thread", "ForkedCall"]


# ============================================================================ glibc malloc
MMAP_THRESHOLD = 32 * 1024 * 1024     # bytes: arrays below this come from the heap, not a fresh mmap
TRIM_THRESHOLD = 1024 * 1024 * 1024   # bytes: the heap is not shrunk until this much is free at its top

_MALLOC_TUNED: bool | None = None     # None: configure() not called yet in this process


def _keep_freed_memory() -> bool:
    """Ask glibc to keep freed memory in the process instead of unmapping it.

    Two settings: M_MMAP_THRESHOLD = 32 MiB (arrays below that come from the heap, not a
    fresh mmap each time) and M_TRIM_THRESHOLD = 1 GiB (the heap is not shrunk after each
    step). Without them a training step of the chapter model costs about 2,900 page faults
    and 8 ms of system time (``model.py``, Speed). The memory is reused by the next step, so
    the process's footprint stays at its peak rather than growing. Returns True if both were
    applied; False (and nothing done) when you set ``MALLOC_MMAP_THRESHOLD_`` or
    ``MALLOC_TRIM_THRESHOLD_`` yourself, off Linux, or with a libc without ``mallopt`` (musl).
    """
    if not sys.platform.startswith("linux"):
        return False
    if "MALLOC_MMAP_THRESHOLD_" in os.environ or "MALLOC_TRIM_THRESHOLD_" in os.environ:
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # musl and other libcs have no mallopt
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
    ok_mmap = mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)
    ok_trim = mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD)
    return bool(ok_mmap and ok_trim)


def configure() -> bool:
    """Apply the process-wide settings once (later calls do nothing); True if glibc's malloc
    thresholds are raised in this process (:func:`_keep_freed_memory`)."""
    global _MALLOC_TUNED
    if _MALLOC_TUNED is None:
        _MALLOC_TUNED = _keep_freed_memory()
    return _MALLOC_TUNED


def malloc_tuned() -> bool:
    """Whether :func:`configure` has raised glibc's malloc thresholds in this process (no side effect)."""
    return bool(_MALLOC_TUNED)


# ============================================================================ BLAS threads
_BLAS: ThreadpoolController | None = None   # made on first use: it inspects the libraries loaded by then


def single_threaded_blas():
    """A context in which BLAS runs on one thread (``threadpoolctl``).

    PPO multiplies small matrices: during generation a few rows per step, in the updates a
    couple of thousand rows of width 64. A second BLAS thread gains little there, and as soon
    as another process occupies a core, OpenBLAS's hand-offs between threads make every
    product wait: an iteration then runs 5-10 times slower (measured on a 2-core machine with
    a core busy, ``benchmarks/bench_ppo.py``). Sampling, every forward and backward pass and
    the whole PPO loop run inside this context, which also makes their results independent
    of the machine's core count. Entering it costs about 10 µs.
    """
    global _BLAS
    if _BLAS is None:
        _BLAS = ThreadpoolController()
    # a controller that found no library it knows (len 0) has nothing to limit
    return _BLAS.limit(limits=1, user_api="blas") if _BLAS else contextlib.nullcontext()


def one_blas_thread(fn):
    """Decorator: run ``fn`` inside :func:`single_threaded_blas`."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        with single_threaded_blas():
            return fn(*args, **kwargs)
    return wrapper


# ============================================================================ a second process
class ForkedCall:
    """``fn(*args)`` started in a forked second process; :meth:`result` is its value, or None.

    Linux only ("spawn", the default elsewhere, would re-run the caller's script in the child).
    None comes back where nothing was started (``enabled`` False, not Linux, the fork failed) or
    the child failed: the caller then computes the same result in this process. Use it as a
    context manager: leaving the block waits for the child and shuts the pool down.
    """

    def __init__(self, fn: Callable[..., Any], *args: Any, enabled: bool = True) -> None:
        self._pool: concurrent.futures.ProcessPoolExecutor | None = None
        self._future: concurrent.futures.Future | None = None
        if not (enabled and sys.platform.startswith("linux")):
            return
        try:
            self._pool = concurrent.futures.ProcessPoolExecutor(
                max_workers=1, mp_context=multiprocessing.get_context("fork"))
            self._future = self._pool.submit(fn, *args)
        except (OSError, RuntimeError, ValueError):        # no second process here
            self._pool = self._future = None

    def result(self) -> Any:
        """The child's return value; None if nothing was started or the child failed."""
        if self._future is None:
            return None
        try:
            return self._future.result()
        except Exception:                                   # the child failed: the caller redoes it
            return None

    def __enter__(self) -> ForkedCall:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
