"""Start JupyterLab for the course on a working copy of the book: ``make lab`` runs this.

    python tools/lab.py                 # copy new chapters into lab/, then start JupyterLab there
    python tools/lab.py reset [NN ...]  # replace your copy of chapter NN (or of every chapter) with the book's
    python tools/lab.py reset --yes 03  # the same without the question (for scripts)

The executed book in ``notebooks/`` is what the tests compare and what git tracks. Running a
chapter changes a notebook (outputs, and JupyterLab saves open notebooks every two minutes),
so JupyterLab never opens the book itself: it opens ``lab/``, a copy that git ignores.
``lab/`` is created on first use; a chapter missing from it is copied in, and a chapter you
already have is never overwritten: when the book has a newer version of it, ``make lab``
says so and ``make lab-reset NB=NN`` replaces your copy after asking.

The server binds to 127.0.0.1 only and keeps token authentication on (JupyterLab prints the
URL with the token). Containers and CI machines often run as root, which JupyterLab refuses
unless told, so ``--allow-root`` is passed when the user is root.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BOOK = ROOT / "notebooks"
WORKING_COPY = ROOT / "lab"
MANIFEST = ".book-versions.json"   # file name -> sha256 of the book's notebook when it was copied


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _chapters(book: Path) -> list[Path]:
    return sorted(book.glob("[0-9][0-9]_*.ipynb"))


def _manifest(lab: Path) -> dict[str, str]:
    path = lab / MANIFEST
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}


def _write_manifest(lab: Path, manifest: dict[str, str]) -> None:
    (lab / MANIFEST).write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n", encoding="utf-8")


def prepare_working_copy(book: Path = BOOK, lab: Path = WORKING_COPY) -> list[str]:
    """Copy every chapter that ``lab`` lacks from ``book``; never overwrite one it has.

    Returns one message per chapter that was copied, or whose book version changed since it
    was copied (those are left as they are).
    """
    lab.mkdir(parents=True, exist_ok=True)
    manifest, messages = _manifest(lab), []
    for nb in _chapters(book):
        copy = lab / nb.name
        if not copy.exists():
            shutil.copy2(nb, copy)
            manifest[nb.name] = _sha(nb)
            messages.append(f"copied {nb.name} into {lab.name}/")
        elif manifest.get(nb.name) != _sha(nb):
            messages.append(f"{lab.name}/{nb.name}: the book has a newer version; your copy is kept "
                            f"(`make lab-reset NB={nb.name[:2]}` replaces it, and your changes are lost)")
    _write_manifest(lab, manifest)
    return messages


def reset(selection: list[str], book: Path = BOOK, lab: Path = WORKING_COPY, ask=input) -> list[str]:
    """Replace the copies of the chapters whose names start with one of ``selection`` (all if
    empty) with the book's version, after ``ask`` returns "y"; returns what was replaced."""
    chosen = [nb for nb in _chapters(book) if not selection or any(nb.name.startswith(s) for s in selection)]
    if not chosen:
        raise SystemExit(f"no chapter matches {' '.join(selection)}")
    existing = [nb for nb in chosen if (lab / nb.name).exists()]
    if existing:
        names = ", ".join(nb.name for nb in existing)
        reply = ask(f"Replace {names} in {lab.name}/ with the book's version? Your changes are lost. [y/N] ")
        if reply.strip().lower() not in {"y", "yes"}:
            return []
    lab.mkdir(parents=True, exist_ok=True)
    manifest = _manifest(lab)
    for nb in chosen:
        shutil.copy2(nb, lab / nb.name)
        manifest[nb.name] = _sha(nb)
    _write_manifest(lab, manifest)
    return [nb.name for nb in chosen]


def lab_command(port: int | None = None, token: str | None = None, open_browser: bool = True,
                root: Path = WORKING_COPY) -> list[str]:
    """The command line ``make lab`` runs (tests start the server with the same one)."""
    cmd = [sys.executable, "-m", "jupyter", "lab", f"--ServerApp.root_dir={root}", "--ServerApp.ip=127.0.0.1"]
    if port is not None:
        cmd.append(f"--ServerApp.port={port}")
    if token is not None:
        if not token:
            raise ValueError("an empty token would disable authentication")
        cmd.append(f"--IdentityProvider.token={token}")
    if not open_browser:
        cmd.append("--no-browser")
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        cmd.append("--allow-root")
    return cmd


def main(argv: list[str]) -> int:
    if argv and argv[0] == "reset":
        args = argv[1:]
        yes = "--yes" in args
        args = [a for a in args if a != "--yes"]
        if not yes and not sys.stdin.isatty():
            raise SystemExit("reset asks before replacing your copies; add --yes (make lab-reset ... YES=1)")
        done = reset(args, ask=(lambda _: "y") if yes else input)
        print("\n".join(f"replaced lab/{n} with the book's version" for n in done) or "nothing replaced")
        return 0
    for message in prepare_working_copy():
        print(message)
    os.execv(sys.executable, lab_command(open_browser="--no-browser" not in argv))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
