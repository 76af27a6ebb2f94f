from django.apps import AppConfig


class RollbacksConfig(AppConfig):
    name = "rollbacks"
