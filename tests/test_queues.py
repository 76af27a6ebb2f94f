"""Every task of ours runs on one of the three documented queues, so a slow integrator (execution) cannot starve
messages (communications) or the sweeper and the audit anchors (housekeeping)."""

import re
from pathlib import Path

import pytest
import yaml
from celery import shared_task
from django.conf import settings

from rollback_console import queues
from rollback_console.celery import app as celery_app
from tests.rollbacks.test_worker_guard import OUR_PACKAGES, our_tasks

DOCS = Path(settings.BASE_DIR) / "docs" / "execution.md"


def unrouted() -> list[str]:
    """Tasks of ours without a route of their own (they would land on the default queue, unnoticed)."""
    routes = celery_app.conf.task_routes
    return [name for name in our_tasks() if name not in routes or routes[name]["queue"] not in queues.QUEUES]


def test_every_registered_task_of_ours_is_routed_to_one_of_the_three_queues():
    assert our_tasks(), "the registry lists our tasks"
    assert sorted(queues.TASK_QUEUES) == our_tasks()
    assert unrouted() == []
    for name in our_tasks():
        assert celery_app.amqp.router.route({}, name)["queue"].name == queues.TASK_QUEUES[name]


def test_execution_messages_and_housekeeping_go_to_their_own_queues():
    def queue_of(name: str) -> str:
        return celery_app.amqp.router.route({}, name)["queue"].name

    assert queue_of("rollbacks.tasks.execute_steps") == queue_of("rollbacks.tasks.run_rollback") == "execution"
    assert queue_of("rollbacks.tasks.send_communication") == "communications"
    assert queue_of("rollbacks.tasks.send_integrator_events") == "communications"
    assert queue_of("rollbacks.tasks.resume_stalled_rollbacks") == "housekeeping"
    assert queue_of("audit.tasks.anchor_audit_head") == "housekeeping"


def test_a_new_task_without_a_route_fails_the_routing_check():
    @shared_task(name="rollbacks.tasks.an_unrouted_task_for_this_test")
    def unrouted_task() -> None:
        """Registered only while this test runs."""

    try:
        assert "rollbacks.tasks.an_unrouted_task_for_this_test" in unrouted()
        assert sorted(queues.TASK_QUEUES) != our_tasks()
    finally:
        del celery_app.tasks["rollbacks.tasks.an_unrouted_task_for_this_test"]


def test_a_worker_started_without_queues_consumes_all_three():
    assert sorted(celery_app.conf.task_queues) == sorted(queues.QUEUES)


@pytest.mark.parametrize("queue", queues.QUEUES)
def test_each_queue_is_documented_with_its_tasks(queue):
    text = DOCS.read_text()
    assert re.search(rf"`{queue}`", text), f"docs/execution.md names the {queue} queue"
    for task, routed in queues.TASK_QUEUES.items():
        if routed == queue:
            assert task in text, f"docs/execution.md lists {task}"


def test_our_packages_are_the_ones_the_worker_guard_test_covers():
    assert {task.split(".")[0] for task in queues.TASK_QUEUES} <= OUR_PACKAGES


COMPOSE = yaml.safe_load((Path(settings.BASE_DIR) / "docker-compose.yml").read_text())


def test_compose_runs_a_worker_service_per_queue_each_restarted_and_stopped_gracefully():
    services = COMPOSE["services"]
    consumed = {}
    for name, service in services.items():
        command = service.get("command", [])
        if command[:4] == ["celery", "-A", "rollback_console", "worker"]:
            consumed[name] = command[command.index("-Q") + 1]
            assert service["restart"] == "unless-stopped"
            assert int(service["stop_grace_period"].rstrip("s")) >= 30, "time for a warm shutdown"
    assert consumed == {f"worker-{queue}": queue for queue in queues.QUEUES}
    assert [name for name, s in services.items() if "beat" in s.get("command", [])] == ["beat"]


def test_compose_web_stops_gracefully_and_logs_json():
    web = COMPOSE["services"]["web"]
    command = web["command"]
    graceful = int(command[command.index("--graceful-timeout") + 1])
    assert int(web["stop_grace_period"].rstrip("s")) > graceful
    assert web["restart"] == "unless-stopped"
    assert web["environment"]["LOG_FORMAT"] == "${LOG_FORMAT:-json}"
    assert "/healthz" in " ".join(web["healthcheck"]["test"])


def test_the_demo_runs_its_worker_under_the_supervisor_on_every_queue():
    demo = (Path(settings.BASE_DIR) / "scripts" / "demo").read_text()
    [line] = [line for line in demo.splitlines() if "celery -A rollback_console worker" in line]
    assert line.startswith("scripts/supervise ") and " -Q " not in line
