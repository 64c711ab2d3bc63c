from django.apps import AppConfig
from django.db.models.signals import post_delete, post_save


class SchedulingConfig(AppConfig):
    name = "scheduling"

    def ready(self):
        from .audit import register_timeline_sources

        register_timeline_sources()

        # Cache invalidation, not domain flow: a saved cohort or round is read afresh by the
        # next webhook of this process (a rotated secret or new event types apply at once).
        from applications.models import Cohort

        from .models import InterviewRound
        from .webhook_keys import forget_cohort

        def forget(sender, instance, **kwargs):
            forget_cohort(instance.pk if sender is Cohort else instance.cohort_id)

        for model in (Cohort, InterviewRound):
            post_save.connect(forget, sender=model, weak=False, dispatch_uid=f"webhook_keys.{model.__name__}.save")
            post_delete.connect(forget, sender=model, weak=False, dispatch_uid=f"webhook_keys.{model.__name__}.delete")
