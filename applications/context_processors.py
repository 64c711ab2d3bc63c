from .models import Cohort


def cohorts(request):
    """Add `my_cohorts`, the header's cohort switcher: a lazy queryset, run only if rendered."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {"my_cohorts": Cohort.objects.none()}
    # Archived cohorts leave the switcher; the home page lists them under "Archived".
    return {"my_cohorts": Cohort.objects.for_user(user).filter(archived_at__isnull=True).order_by("name")}
