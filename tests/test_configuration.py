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


PRODUCTION = {
    "DEBUG": "0",
    "SECRET_KEY": "a-production-like-secret-key-for-the-check-0123456789-abcdefghijklmnop",
    "ALLOWED_HOSTS": "rollback.example.com",
    "SECURE_SSL_REDIRECT": "1",
    "SECURE_HSTS_PRELOAD": "1",
}


def test_check_deploy_is_clean_with_production_settings(tmp_path):
    # The browser tests set DJANGO_ALLOW_ASYNC_UNSAFE in this process, which check --deploy rightly warns about.
    unset = ("SECRET_KEY", "DEBUG", "DJANGO_ALLOW_ASYNC_UNSAFE")
    environment = {key: value for key, value in os.environ.items() if key not in unset}
    environment.update(PRODUCTION, VAR_DIR=str(tmp_path))

    process = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=settings.BASE_DIR,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert process.returncode == 0, process.stdout + process.stderr
    assert "System check identified no issues" in process.stdout


@pytest.mark.django_db
def test_every_page_carries_a_content_security_policy_allowing_only_our_own_scripts(client, cast):
    client.force_login(cast.carl)

    header = client.get("/console/")["Content-Security-Policy"]

    directives = dict(part.strip().split(" ", 1) for part in header.split(";"))
    assert directives["script-src"] == "'self'"
    assert directives["default-src"] == "'self'"
    assert directives["frame-ancestors"] == directives["object-src"] == "'none'"
