"""The project's settings plus a bare DRF create endpoint, for bench/intake.py's side-by-side comparison only."""

from rollback_console.settings import *  # noqa: F403 (the whole project's settings, one URLconf changed)

ROOT_URLCONF = "bench.intake_urls"
