"""The applications app's models, a module per concern; every name is imported from here.

orgs: Organization, Membership, UserSettings. cohorts: Cohort and its webhook key
generators. applications: Application, ApplicationEmail, StatusChange. Migrations
name the generators `applications.models.new_webhook_key` (etc.): keep them here.
"""

from .orgs import Membership, MembershipQuerySet, Organization, UserSettings, time_zone_or_utc
from .cohorts import (
    Cohort, CohortQuerySet, bump_cohort_version, new_webhook_key, new_webhook_secret,
)
from .applications import (
    Application, ApplicationEmail, ApplicationQuerySet, StatusChange, new_public_id, normalize_email,
)
# simple_history puts each history model in its model's module: the one file had them too.
from .cohorts import HistoricalCohort
from .applications import HistoricalApplication

# The model lives beside its registry; Django registers an app's models by importing this package.
from ..timeline import TimelineEntry

__all__ = [
    "Organization", "Membership", "MembershipQuerySet", "UserSettings", "time_zone_or_utc",
    "Cohort", "CohortQuerySet", "bump_cohort_version", "new_webhook_key", "new_webhook_secret",
    "Application", "ApplicationQuerySet", "ApplicationEmail", "StatusChange",
    "new_public_id", "normalize_email",
    "HistoricalCohort", "HistoricalApplication", "TimelineEntry",
]
