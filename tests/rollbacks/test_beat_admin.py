"""The beat schedule picks which of our tasks run with which arguments: in the admin only superusers see it or
change it, whatever django-celery-beat permissions a staff user holds (the hole of issue 8)."""

import pytest
from django.contrib.auth.models import Permission, User
from django.test import Client
from django_celery_beat.models import IntervalSchedule, PeriodicTask

pytestmark = pytest.mark.django_db

BEAT_PAGES = ["periodictask", "intervalschedule", "crontabschedule", "solarschedule", "clockedschedule"]


def signed_in(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def scheduler() -> User:
    """Staff, holding every permission django-celery-beat defines and nothing else."""
    user = User.objects.create_user("scheduler", is_staff=True)
    user.user_permissions.set(Permission.objects.filter(content_type__app_label="django_celery_beat"))
    return user


@pytest.mark.parametrize("page", BEAT_PAGES)
def test_a_staff_user_with_every_beat_permission_may_not_open_the_schedule(scheduler, page):
    client = signed_in(scheduler)

    assert client.get(f"/admin/django_celery_beat/{page}/").status_code == 403
    assert client.get(f"/admin/django_celery_beat/{page}/add/").status_code == 403


def test_a_staff_user_may_not_schedule_a_task_nor_see_the_schedule_in_the_index(scheduler):
    every_minute = IntervalSchedule.objects.create(every=1, period=IntervalSchedule.MINUTES)
    client = signed_in(scheduler)

    response = client.post(
        "/admin/django_celery_beat/periodictask/add/",
        {
            "name": "refund everything",
            "regtask": "rollbacks.tasks.execute_steps",
            "interval": every_minute.pk,
            "args": "[[1, 2, 3]]",
            "kwargs": "{}",
            "enabled": "on",
        },
    )

    assert response.status_code == 403
    assert not PeriodicTask.objects.filter(name="refund everything").exists()
    assert "django_celery_beat" not in client.get("/admin/").content.decode()


@pytest.mark.parametrize("page", BEAT_PAGES)
def test_a_superuser_keeps_the_schedule(page):
    client = signed_in(User.objects.create_superuser("root-operator", "ops@example.com", "x"))

    assert client.get(f"/admin/django_celery_beat/{page}/").status_code == 200
