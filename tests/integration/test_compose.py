"""docker-compose.yml: the broker asks for a password, and every service that talks to it carries one. Whoever
writes to Redis can hand the workers a task, so an open broker is the second door of issue 8."""

from pathlib import Path

import yaml
from django.conf import settings

COMPOSE = yaml.safe_load((Path(settings.BASE_DIR) / "docker-compose.yml").read_text())


def test_redis_refuses_to_start_without_a_password_and_requires_it():
    redis = COMPOSE["services"]["redis"]
    command = " ".join(redis["command"])

    assert redis["environment"]["REDIS_PASSWORD"] == "${REDIS_PASSWORD:-}"
    assert 'test -n "$$REDIS_PASSWORD" ||' in command and "exit 1" in command
    assert '--requirepass "$$REDIS_PASSWORD"' in command
    assert "REDISCLI_AUTH" in " ".join(redis["healthcheck"]["test"])


def test_every_service_that_uses_the_broker_carries_the_password_in_its_url():
    users = {
        name: service["environment"]["CELERY_BROKER_URL"]
        for name, service in COMPOSE["services"].items()
        if "CELERY_BROKER_URL" in service.get("environment", {})
    }

    assert {"web", "worker-execution", "worker-communications", "worker-housekeeping", "beat"} <= set(users)
    assert set(users.values()) == {"redis://:${REDIS_PASSWORD:-}@redis:6379/0"}
