"""Start-up refuses unsafe configuration, and production settings pass `check --deploy`."""

import os
import subprocess
import sys

import pytest
from django.conf import settings

LONG_KEY = "k" * 50


def start(**env: str) -> subprocess.CompletedProcess:
    """Import the settings in a fresh process, as the web server, a worker or a command does at start."""
    environment = {key: value for key, value in os.environ.items() if key not in ("SECRET_KEY", "DEBUG")}
    environment.update(env)
    return subprocess.run(
        [sys.executable, "-c", "import rollback_console.settings"],
        cwd=settings.BASE_DIR,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize(
    "env",
    [{}, {"SECRET_KEY": ""}, {"SECRET_KEY": "ci"}, {"SECRET_KEY": "k" * 49}, {"SECRET_KEY": "insecure" + "k" * 50}],
    ids=["unset", "empty", "short", "one-short", "insecure"],
)
def test_an_empty_or_short_secret_key_stops_the_process_at_start_with_debug_off(env):
    process = start(DEBUG="0", **env)

    assert process.returncode != 0
    assert "Set SECRET_KEY to at least 50 random characters" in process.stderr


def test_a_secret_key_of_fifty_characters_starts():
    assert start(DEBUG="0", SECRET_KEY=LONG_KEY).returncode == 0


def test_a_local_run_with_debug_on_needs_no_secret_key():
    assert start(DEBUG="1").returncode == 0
