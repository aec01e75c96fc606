"""``make lab`` serves JupyterLab on 127.0.0.1 with token authentication."""

import secrets
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tools"))
from lab import lab_command  # noqa: E402


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _status(url: str) -> int:
    try:
        with urllib.request.urlopen(urllib.request.Request(url), timeout=5) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code


def test_lab_command_binds_localhost_and_never_disables_the_token():
    cmd = lab_command(port=8888, token="abc")
    assert "--ServerApp.ip=127.0.0.1" in cmd
    assert not any("token=''" in c or c.endswith("token=") for c in cmd)
    with pytest.raises(ValueError):
        lab_command(token="")


def test_lab_answers_with_the_token_and_refuses_without_it(tmp_path):
    port, token = _free_port(), secrets.token_hex(16)
    env = {"HOME": str(tmp_path), "JUPYTER_RUNTIME_DIR": str(tmp_path / "rt"), "PATH": "/usr/bin:/bin"}
    proc = subprocess.Popen(lab_command(port=port, token=token, open_browser=False),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.time() + 60
        while True:
            try:
                code = _status(f"{base}/api/status?token={token}")
                if code == 200:
                    break
            except OSError:
                pass
            assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
            assert time.time() < deadline, "JupyterLab did not start within 60 s"
            time.sleep(0.5)
        assert _status(f"{base}/lab?token={token}") == 200
        assert _status(f"{base}/api/status") == 403
        # /lab without a token redirects to the login page instead of serving the app
        req = urllib.request.Request(f"{base}/lab")
        opener = urllib.request.build_opener(type("NoRedirect", (urllib.request.HTTPRedirectHandler,),
                                                  {"redirect_request": lambda *a, **k: None}))
        try:
            code = opener.open(req, timeout=5).status
        except urllib.error.HTTPError as e:
            code = e.code
        assert code in (302, 401, 403)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
