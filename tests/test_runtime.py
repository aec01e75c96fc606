"""course_utils.runtime: process-wide settings applied on purpose, never as a side effect of an import."""

from __future__ import annotations

import subprocess
import sys

import threadpoolctl

from course_utils import ppo, runtime


def _blas_threads() -> list[int]:
    return [p["num_threads"] for p in threadpoolctl.threadpool_info() if p["user_api"] == "blas"]


def test_single_threaded_blas_limits_and_restores():
    before = _blas_threads()
    with runtime.single_threaded_blas():
        assert all(n == 1 for n in _blas_threads())
    assert _blas_threads() == before


def test_one_blas_thread_decorator_and_the_ppo_reexport():
    @runtime.one_blas_thread
    def threads():
        """docstring kept"""
        return _blas_threads()

    assert all(n == 1 for n in threads()) and threads.__doc__ == "docstring kept"
    assert ppo.single_threaded_blas is runtime.single_threaded_blas


def test_importing_changes_nothing_and_configure_applies_once():
    code = ("import course_utils.model, course_utils.training, course_utils.ppo, course_utils.runtime as r\n"
            "assert r._MALLOC_TUNED is None and r.malloc_tuned() is False\n"
            "first = r.configure()\n"
            "assert r.configure() is first and r.malloc_tuned() is first\n"
            "print(first)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    if sys.platform.startswith("linux"):
        assert out.stdout.strip() in {"True", "False"}       # False only without glibc's mallopt (musl)
