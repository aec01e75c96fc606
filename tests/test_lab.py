"""``make lab`` serves JupyterLab on 127.0.0.1 with token authentication, on a working copy of the book."""

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
from lab import WORKING_COPY, lab_command, prepare_working_copy, reset  # noqa: E402


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


def _book(tmp_path, chapters=("01_a", "02_b")):
    book = tmp_path / "book"
    book.mkdir()
    for name in chapters:
        (book / f"{name}.ipynb").write_text(f"book {name}")
    return book, tmp_path / "lab"


def test_lab_serves_the_working_copy_not_the_book():
    cmd = lab_command(port=8888, token="abc")
    assert f"--ServerApp.root_dir={WORKING_COPY}" in cmd
    assert WORKING_COPY.name == "lab" and "lab/" in (WORKING_COPY.parent / ".gitignore").read_text().split()


def test_first_use_copies_every_chapter_and_later_uses_never_overwrite(tmp_path):
    book, lab = _book(tmp_path)
    messages = prepare_working_copy(book, lab)
    assert sorted(p.name for p in lab.glob("*.ipynb")) == ["01_a.ipynb", "02_b.ipynb"]
    assert len(messages) == 2
    (lab / "01_a.ipynb").write_text("my work")
    assert prepare_working_copy(book, lab) == []                       # second use: nothing to say
    (book / "01_a.ipynb").write_text("book 01_a, new edition")
    (book / "03_c.ipynb").write_text("book 03_c")
    messages = prepare_working_copy(book, lab)
    assert (lab / "01_a.ipynb").read_text() == "my work"               # kept
    assert (lab / "03_c.ipynb").read_text() == "book 03_c"             # new chapter copied
    assert any("01_a.ipynb" in m and "lab-reset NB=01" in m for m in messages)


def test_reset_asks_first_and_replaces_only_the_chosen_chapter(tmp_path):
    book, lab = _book(tmp_path)
    prepare_working_copy(book, lab)
    for p in lab.glob("*.ipynb"):
        p.write_text("my work")
    assert reset(["01"], book, lab, ask=lambda _: "n") == []
    assert (lab / "01_a.ipynb").read_text() == "my work"
    assert reset(["01"], book, lab, ask=lambda _: "y") == ["01_a.ipynb"]
    assert (lab / "01_a.ipynb").read_text() == "book 01_a"
    assert (lab / "02_b.ipynb").read_text() == "my work"
    assert reset([], book, lab, ask=lambda _: "yes") == ["01_a.ipynb", "02_b.ipynb"]
    assert prepare_working_copy(book, lab) == []


def test_reset_without_a_terminal_needs_yes():
    proc = subprocess.run([sys.executable, str(WORKING_COPY.parent / "tools" / "lab.py"), "reset", "01"],
                          stdin=subprocess.DEVNULL, capture_output=True, text=True)
    assert proc.returncode != 0 and "--yes" in proc.stderr


@pytest.mark.slow
def test_lab_answers_with_the_token_and_refuses_without_it(tmp_path):
    port, token = _free_port(), secrets.token_hex(16)
    env = {"HOME": str(tmp_path), "JUPYTER_RUNTIME_DIR": str(tmp_path / "rt"), "PATH": "/usr/bin:/bin"}
    proc = subprocess.Popen(lab_command(port=port, token=token, open_browser=False, root=tmp_path),
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
