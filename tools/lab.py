"""Start JupyterLab for the course: ``make lab`` runs this.

Binds to 127.0.0.1 only and keeps token authentication on (JupyterLab prints the URL with
the token). Containers and CI machines often run as root, which JupyterLab refuses unless
told, so ``--allow-root`` is passed when the user is root.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def lab_command(port: int | None = None, token: str | None = None, open_browser: bool = True) -> list[str]:
    """The command line ``make lab`` runs (tests start the server with the same one)."""
    cmd = [sys.executable, "-m", "jupyter", "lab", f"--ServerApp.root_dir={ROOT / 'notebooks'}",
           "--ServerApp.ip=127.0.0.1"]
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


if __name__ == "__main__":
    os.execv(sys.executable, lab_command(open_browser="--no-browser" not in sys.argv[1:]))
