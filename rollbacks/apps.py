from django.apps import AppConfig


class RollbacksConfig(AppConfig):
    name = "rollbacks"

    def ready(self) -> None:
        # Register the tasks in every process, not only in workers (which autodiscover them): rollbacks.dispatch
        # finds them by name in Celery's registry, so that no service imports the task module. Django's ready()
        # is the documented place for an import made for its side effect.
        from rollbacks import tasks  # noqa: F401
