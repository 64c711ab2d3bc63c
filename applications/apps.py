from django.apps import AppConfig


class ApplicationsConfig(AppConfig):
    name = "applications"

    def ready(self):
        # Audit, not domain flow: the one place that sees every save (admin, commands, shell).
        from simple_history.signals import post_create_historical_record

        from .audit import record_edit

        post_create_historical_record.connect(record_edit, dispatch_uid="applications.record_edit")
