"""Starting ``reid-serve`` as a person would: a clean log, and a second server that fails fast.

A second server on a taken port exits at once, before it loads the model or touches any index folder;
a second process on a folder another one holds is refused with the holder's pid and leaves it alone.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from service.storage.db import migrate

START_TIMEOUT_S = 120
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def files_under(folder: Path) -> dict[str, tuple[int, int]]:
    """Every file under ``folder``: size and modification time."""
    return {str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns) for p in folder.rglob("*")}


def test_a_second_server_fails_fast_and_the_first_logs_no_traceback(tmp_path, model_dir, helpers):
    url = f"sqlite:///{tmp_path / 'serve.db'}"
    migrate(url)
    port, other_port = free_port(), free_port()
    indexes = tmp_path / "indexes"
    env = {
        **os.environ,
        "REID_DATABASE_URL": url,
        "REID_MODEL_DIR": str(model_dir),
        "REID_INDEX_DIR": str(indexes),
        "REID_ADMIN_KEY": helpers.admin["X-API-Key"],
        "REID_DEVICE": "cpu",
        "REID_HOST": "127.0.0.1",
        "REID_PORT": str(port),
        "REID_LOG_LEVEL": "info",
    }
    log = tmp_path / "first.log"
    with log.open("w") as out:
        first = subprocess.Popen(
            [BIN / "reid-serve"], env=env, cwd=tmp_path, stdout=out, stderr=subprocess.STDOUT
        )
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            assert first.poll() is None, log.read_text()
            try:
                if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.2)
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
            helpers.make_store(client, ["entrance"])
        held = files_under(indexes)

        # the same port: refused before the model or any index folder is touched
        elsewhere = tmp_path / "second-indexes"
        started = time.monotonic()
        second = subprocess.run(
            [BIN / "reid-serve"],
            env={**env, "REID_INDEX_DIR": str(elsewhere)},
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert second.returncode != 0
        assert f"127.0.0.1:{port} is already in use" in second.stderr
        assert "--port" in second.stderr and "REID_PORT" in second.stderr
        assert "Traceback" not in second.stderr and "indexes ready" not in second.stderr
        assert not elsewhere.exists()
        assert time.monotonic() - started < 30

        # another port, the same index folder: refused, naming the process that holds it
        third = subprocess.run(
            [BIN / "reid-serve", "--port", str(other_port)],
            env=env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert third.returncode != 0
        assert f"in use by process {first.pid}" in third.stderr and "REID_INDEX_DIR" in third.stderr
        assert "Traceback" not in third.stderr and "indexes ready" not in third.stderr
        rebuild = subprocess.run(
            [BIN / "reid-admin", "rebuild-index"],
            env=env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert rebuild.returncode == 1 and f"in use by process {first.pid}" in rebuild.stderr
        assert files_under(indexes) == held
        assert httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5).status_code == 200
    finally:
        first.send_signal(signal.SIGINT)
        try:
            first.wait(timeout=60)
        except subprocess.TimeoutExpired:
            first.kill()
    output = log.read_text()
    assert first.returncode == 0, output
    assert "Application startup complete" in output and "indexes ready" in output
    assert "Traceback" not in output and "swigfaiss" not in output, output
    assert "saved indexes of" in output

    # once the first has stopped, the folder is free again
    rebuild = subprocess.run(
        [BIN / "reid-admin", "rebuild-index"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert rebuild.returncode == 0, rebuild.stderr


def test_the_printed_create_key_command_runs_as_printed(tmp_path):
    """A second ``reid-admin demo`` says how to make a key; that line works in a shell without the venv."""
    path = os.pathsep.join(p for p in os.environ.get("PATH", "").split(os.pathsep) if Path(p) != BIN)
    env = {k: v for k, v in os.environ.items() if not k.startswith("REID_")} | {"PATH": path}
    admin = [str(BIN / "reid-admin"), "demo"]
    assert subprocess.run(admin, env=env, cwd=tmp_path, capture_output=True, timeout=120).returncode == 0
    again = subprocess.run(admin, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert again.returncode == 0, again.stderr
    command = again.stdout.split("Make a new one with: ", 1)[1].strip()
    assert command.endswith("create-key 1")
    made = subprocess.run(
        command, shell=True, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert made.returncode == 0, made.stderr
    assert made.stdout.strip().split()[-1].startswith("reid_")
