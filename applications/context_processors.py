from .models import Cohort


def cohorts(request):
    """Add `my_cohorts`, the header's cohort switcher: a lazy queryset, run only if rendered."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {"my_cohorts": Cohort.objects.none()}
    return {"my_cohorts": Cohort.objects.for_user(user).order_by("name")}
