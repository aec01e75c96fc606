"""Execution time of every notebook, as nbval runs them (fresh kernel, top to bottom).

    .venv/bin/python benchmarks/bench_notebooks.py [--markdown]

Prints one line per notebook and the total; ``--markdown`` prints the table for the README.
Timings depend on the machine and its load: run it on an otherwise idle machine.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))
from notebooks import _client_class  # noqa: E402


def run(path: Path) -> float:
    nb = nbformat.read(path, as_version=4)
    client = _client_class()(nb, timeout=600, kernel_name="python3", record_timing=False,
                             store_widget_state=False, resources={"metadata": {"path": str(path.parent)}})
    t0 = time.perf_counter()
    client.execute()
    return time.perf_counter() - t0


def main() -> None:
    import numpy  # noqa: F401  (loads the BLAS library threadpoolctl reports)
    from threadpoolctl import threadpool_info

    blas = [f"{i.get('internal_api')} {i.get('version')} ({i.get('architecture')}, {i.get('num_threads')} threads)"
            for i in threadpool_info() if i.get("user_api") == "blas"]
    print(f"cores: {os.cpu_count()}, BLAS: {', '.join(blas) or 'unknown'}, "
          f"OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE', '(unset)')}")
    rows = []
    for path in sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")):
        rows.append((path.name, run(path)))
        print(f"{rows[-1][0]:<28} {rows[-1][1]:6.1f} s", flush=True)
    total = sum(t for _, t in rows)
    print(f"{'total':<28} {total:6.1f} s")
    if "--markdown" in sys.argv:
        print("\n| Notebook | seconds |\n|---|---|")
        for name, t in rows:
            print(f"| `{name}` | {t:.0f} |")
        print(f"| **all** | **{total:.0f}** |")


if __name__ == "__main__":
    main()
