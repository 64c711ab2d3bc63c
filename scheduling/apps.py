from django.apps import AppConfig


class SchedulingConfig(AppConfig):
    name = "scheduling"

    def ready(self):
        from .audit import register_timeline_sources

        register_timeline_sources()
