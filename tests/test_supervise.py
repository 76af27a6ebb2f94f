"""scripts/supervise, under which scripts/demo runs its worker: a command that exits is started again, and a
SIGTERM to the supervisor reaches the command and ends both."""

import os
import signal
import subprocess
import time
from pathlib import Path

from django.conf import settings

SUPERVISE = Path(settings.BASE_DIR) / "scripts" / "supervise"


def wait_for(predicate, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "gave up waiting"
        time.sleep(0.05)


def test_a_command_that_exits_is_started_again(tmp_path):
    starts = tmp_path / "starts"
    supervisor = subprocess.Popen(
        [str(SUPERVISE), "--delay", "0.1", "sh", "-c", f"echo started >> {starts}; exit 3"],
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for(lambda: starts.exists() and len(starts.read_text().splitlines()) >= 3)
    finally:
        supervisor.terminate()
        _, stderr = supervisor.communicate(timeout=20)
    assert "exited with status 3; starting it again" in stderr


def test_sigterm_reaches_the_command_and_ends_the_supervisor(tmp_path):
    pid_file, got_term = tmp_path / "pid", tmp_path / "term"
    script = f"trap 'echo term > {got_term}; exit 0' TERM; echo $$ > {pid_file}; while true; do sleep 0.1; done"
    supervisor = subprocess.Popen([str(SUPERVISE), "--delay", "0.1", "sh", "-c", script])
    wait_for(pid_file.exists)
    wait_for(lambda: pid_file.read_text().strip() != "")
    child = int(pid_file.read_text())

    supervisor.send_signal(signal.SIGTERM)

    assert supervisor.wait(timeout=20) == 0
    assert got_term.read_text().strip() == "term", "the command got SIGTERM (a worker's warm shutdown)"
    wait_for(lambda: not _alive(child))
    assert pid_file.read_text().strip() == str(child), "not started again after SIGTERM"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True
