"""Organizations, their members and roles, and each user's own settings (time zone)."""

import zoneinfo

from django.conf import settings
from django.db import models


class Organization(models.Model):
    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=80, unique=True)
    time_zone = models.CharField(
        max_length=64, default="UTC", help_text="IANA name; the default for members' views."
    )

    def __str__(self):
        return self.name


class MembershipQuerySet(models.QuerySet):
    def is_org_admin(self, user, organization):
        """Return True when `user` is an admin of `organization` (False for anonymous users)."""
        if not user.is_authenticated:
            return False
        return self.filter(user=user, organization=organization, role=Membership.Role.ADMIN).exists()


class Membership(models.Model):
    class Role(models.TextChoices):
        ADMIN = "admin", "Admin"
        MEMBER = "member", "Member"

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, models.CASCADE, related_name="memberships"
    )
    organization = models.ForeignKey(Organization, models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.MEMBER)

    objects = MembershipQuerySet.as_manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "organization"], name="one_membership_per_org")
        ]

    def __str__(self):
        return f"{self.user} in {self.organization} ({self.role})"


def time_zone_or_utc(name):
    """Return the ZoneInfo called `name`, or UTC when the name is empty or unknown."""
    try:
        return zoneinfo.ZoneInfo(name or "UTC")
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return zoneinfo.ZoneInfo("UTC")


class UserSettings(models.Model):
    """A user's own preferences; a missing row means every default."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, models.CASCADE, related_name="app_settings"
    )
    time_zone = models.CharField(
        max_length=64, blank=True,
        help_text="IANA name for showing dates; empty: each organization's own time zone.",
    )

    class Meta:
        verbose_name = verbose_name_plural = "user settings"

    def __str__(self):
        return f"Settings of {self.user}"

    @classmethod
    def time_zone_for(cls, user, organization):
        """Return the ZoneInfo `user` reads `organization`'s dates in (their setting, else the org's)."""
        name = cls.objects.filter(user=user).values_list("time_zone", flat=True).first()
        return time_zone_or_utc(name or organization.time_zone)
