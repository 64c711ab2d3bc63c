import factory
from django.contrib.auth import get_user_model

from applications.models import Application, Cohort, Membership, Organization


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.org")
    password = factory.django.Password("pw-for-tests-1")


class OrganizationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Organization

    name = factory.Sequence(lambda n: f"Org {n}")
    slug = factory.Sequence(lambda n: f"org-{n}")


class MembershipFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Membership

    user = factory.SubFactory(UserFactory)
    organization = factory.SubFactory(OrganizationFactory)
    role = Membership.Role.ADMIN


class CohortFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Cohort

    organization = factory.SubFactory(OrganizationFactory)
    name = factory.Sequence(lambda n: f"Cohort {n}")


class ApplicationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Application

    cohort = factory.SubFactory(CohortFactory)
    applicant_name = factory.Sequence(lambda n: f"Applicant {n}")
    contact_email = factory.Sequence(lambda n: f"applicant{n}@example.org")


class InterviewRoundFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "scheduling.InterviewRound"
        django_get_or_create = ("cohort", "number")

    cohort = factory.SubFactory(CohortFactory)
    number = 1
    booking_url = factory.LazyAttribute(lambda r: f"https://cal.com/northwind/round-{r.number}")
    event_types = factory.LazyAttribute(lambda r: [f"round-{r.number}"])
