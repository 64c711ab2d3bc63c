"""The cohort settings page, invitation sending from pages: admins only, outsiders 404."""

import pytest
from django.core import mail
from django.urls import reverse

from applications.models import Membership
from scheduling import links
from scheduling.models import InterviewRound, Invitation

from .calcom_helpers import post, sample, with_email
from .factories import ApplicationFactory, InterviewRoundFactory, MembershipFactory, UserFactory


def settings_url(cohort):
    return reverse("scheduling:settings", args=[cohort.slug])


def round_data(number=1, **overrides):
    data = {
        "booking_url": "https://cal.com/northwind/first-interview",
        "event_types": "first-interview, 1432",
        "auto_invite": "on",
        "remind_after_days": "3",
        "max_reminders": "2",
        "book_within_days": "7",
        "invitation_subject": "Round {{ round }} for {{ cohort.name }}",
        "invitation_body": "Hi {{ applicant.first_name }}, book here: {{ booking_link }}",
        **overrides,
    }
    return {f"round{number}-{k}": v for k, v in data.items() if v is not None}


@pytest.fixture
def member(cohort):
    user = UserFactory(username="reviewer")
    MembershipFactory(user=user, organization=cohort.organization, role=Membership.Role.MEMBER)
    return user


# --- access --------------------------------------------------------------------------------


def every_new_url(cohort, application):
    return [
        ("get", settings_url(cohort)),
        ("post", reverse("scheduling:round_save", args=[cohort.slug, 1])),
        ("post", reverse("scheduling:round_preview", args=[cohort.slug, 1])),
        ("post", reverse("scheduling:round_delete", args=[cohort.slug, 1])),
        ("get", reverse("scheduling:rotate_secret", args=[cohort.slug])),
        ("post", reverse("scheduling:rotate_secret", args=[cohort.slug])),
        ("post", reverse("scheduling:invite", args=[cohort.slug, application.pk])),
        ("post", reverse("scheduling:invite_selected", args=[cohort.slug])),
    ]


def test_outsiders_get_404_on_every_new_page(client, cohort, outsider, ada):
    client.force_login(outsider)
    secret = cohort.webhook_secret
    for method, url in every_new_url(cohort, ada):
        response = getattr(client, method)(url, round_data())
        assert response.status_code == 404, url
    cohort.refresh_from_db()
    assert cohort.webhook_secret == secret and not InterviewRound.objects.exists()


def test_members_who_are_not_admins_get_403_with_a_sentence(client, cohort, member, ada):
    client.force_login(member)
    for method, url in every_new_url(cohort, ada):
        response = getattr(client, method)(url, round_data())
        assert response.status_code == 403, url
    assert not Invitation.objects.exists()


def test_anonymous_users_are_sent_to_log_in(client, cohort):
    response = client.get(settings_url(cohort))
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


# --- the page ----------------------------------------------------------------------------


def test_settings_page_shows_webhook_set_up_with_the_secret_behind_a_click(admin_client, cohort):
    response = admin_client.get(settings_url(cohort))
    assert response.status_code == 200
    html = response.content.decode()
    assert f"http://testserver/webhooks/calcom/{cohort.webhook_key}/" in html
    assert '<details class="secret">' in html and cohort.webhook_secret in html
    assert "Booking Created" in html and "Meeting Ended" in html and "leave it empty" in html
    assert "Round 1" in html and "not set up" in html
    assert "No delivery has arrived yet" in html


def test_saving_a_round(admin_client, cohort):
    response = admin_client.post(reverse("scheduling:round_save", args=[cohort.slug, 1]), round_data())
    assert response.status_code == 302
    interview_round = InterviewRound.objects.get(cohort=cohort, number=1)
    assert interview_round.event_types == ["first-interview", 1432]
    assert interview_round.auto_invite and interview_round.remind_after_days == 3
    assert interview_round.invitation_subject == "Round {{ round }} for {{ cohort.name }}"


@pytest.mark.parametrize(("field", "value", "says"), [
    ("booking_url", "http://cal.com/northwind/x", "must be an https:// address"),
    ("booking_url", "not a url", "Enter a valid URL"),
    ("invitation_body", "Hi {{ applicant.password }}", "Unknown placeholder {{ applicant.password }}"),
    ("invitation_subject", "{% load static %}", "&#x27;load&#x27;"),
    ("invitation_body", "{% include 'base.html' %}", "&#x27;include&#x27;"),
    ("event_types", "first interview", "is not an event-type slug"),
    ("remind_after_days", "0", "between 1 and 60 days"),
])
def test_invalid_rounds_are_refused_with_a_sentence(admin_client, cohort, field, value, says):
    response = admin_client.post(reverse("scheduling:round_save", args=[cohort.slug, 1]),
                                 round_data(**{field: value}))
    assert response.status_code == 422
    assert says in response.content.decode()
    assert not InterviewRound.objects.exists()


def test_an_event_type_cannot_belong_to_both_rounds(admin_client, cohort):
    InterviewRoundFactory(cohort=cohort, number=1, event_types=["first-interview"])
    response = admin_client.post(reverse("scheduling:round_save", args=[cohort.slug, 2]),
                                 round_data(2, event_types="First-Interview"))
    assert response.status_code == 422
    assert "already belongs to the other round" in response.content.decode()


def test_live_preview_shows_the_error_then_the_text(admin_client, cohort):
    url = reverse("scheduling:round_preview", args=[cohort.slug, 1])
    bad = admin_client.post(url, round_data(invitation_body="Hi {{ applicant.nickname }}"), HTTP_HX_REQUEST="true")
    assert bad.status_code == 200
    assert "Unknown placeholder {{ applicant.nickname }}" in bad.content.decode()
    assert "<html" not in bad.content.decode()
    good = admin_client.post(url, round_data(), HTTP_HX_REQUEST="true").content.decode()
    assert "Hi Ada, book here: https://cal.com/northwind/first-interview?" in good
    assert "Round 1 for Northwind 2026" in good


def test_preview_button_works_without_javascript_and_saves_nothing(admin_client, cohort):
    response = admin_client.post(reverse("scheduling:round_save", args=[cohort.slug, 1]),
                                 {**round_data(), "preview": "1"})
    assert response.status_code == 200
    assert "Hi Ada, book here:" in response.content.decode()
    assert not InterviewRound.objects.exists()


def test_rotate_secret_asks_first_then_rotates(admin_client, cohort):
    url = reverse("scheduling:rotate_secret", args=[cohort.slug])
    old = cohort.webhook_secret
    page = admin_client.get(url).content.decode()
    assert "The old secret stops working now." in page
    cohort.refresh_from_db()
    assert cohort.webhook_secret == old
    response = admin_client.post(url, follow=True)
    cohort.refresh_from_db()
    assert cohort.webhook_secret != old
    assert "stopped working now" in response.content.decode()


def test_removing_a_round(admin_client, cohort):
    InterviewRoundFactory(cohort=cohort, number=2)
    admin_client.post(reverse("scheduling:round_delete", args=[cohort.slug, 2]))
    assert not InterviewRound.objects.exists()


def test_sync_health_lists_deliveries_with_rule_and_attention(admin_client, client, cohort, ada):
    InterviewRoundFactory(cohort=cohort, number=2, event_types=["final-interview"])
    forged = links.make_ref(ada, 1)[:-3] + "abc"
    post(client, cohort, with_email(sample("booking_created", metadata={"application_id": links.make_ref(ada, 1)}),
                                    "other@example.net"))
    post(client, cohort, sample("booking_cancelled"))
    post(client, cohort, with_email(sample("booking_created", uid="ForgedUid0000000000000", iCalUID="ForgedUid0000000000000@Cal.com", metadata={
        "application_id": forged}, type="final-interview"), "nobody@example.net"))
    html = admin_client.get(settings_url(cohort)).content.decode()
    assert "Link reference" in html and "Booking chain" in html
    assert "Needs attention: The booking&#x27;s link reference is not valid" in html
    assert "Orphaned interview" in html
    assert "Last delivery arrived" in html and "1 needs attention" in html


def test_sync_health_shows_the_wrong_round(admin_client, client, cohort, ada):
    InterviewRoundFactory(cohort=cohort, number=2, event_types=["final-interview"])
    post(client, cohort, sample("booking_created", type="final-interview"))
    html = admin_client.get(settings_url(cohort)).content.decode()
    assert "Needs attention: Booked the second-round interview while waiting for round 1." in html


def test_settings_page_queries_are_bounded(admin_client, client, cohort, ada, django_assert_max_num_queries):
    for n in range(25):
        post(client, cohort, with_email(sample("booking_created", uid=f"U{n:021d}", iCalUID=f"U{n}@Cal.com"),
                                        f"p{n}@example.net"))
    with django_assert_max_num_queries(12):
        admin_client.get(settings_url(cohort))


# --- invitations from the application page and the tab ------------------------------------


def test_application_page_shows_the_link_with_a_copy_button_and_sends(admin_client, cohort, ada,
                                                                      django_capture_on_commit_callbacks):
    InterviewRoundFactory(cohort=cohort, number=1)
    detail = reverse("applications:detail", args=[cohort.slug, ada.pk])
    html = admin_client.get(detail).content.decode()
    assert links.make_ref(ada, 1) in html and "Copy link" in html and "Not invited" in html
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(reverse("scheduling:invite", args=[cohort.slug, ada.pk]), follow=True)
    assert "Invitation sent to ada.lovelace@example.org." in response.content.decode()
    assert len(mail.outbox) == 1
    html = admin_client.get(detail).content.decode()
    assert "Invited 0" in html and "Resend invitation" in html


def test_resend_from_the_application_page_is_recorded(admin_client, cohort, ada, org_admin):
    InterviewRoundFactory(cohort=cohort, number=1)
    url = reverse("scheduling:invite", args=[cohort.slug, ada.pk])
    admin_client.post(url)
    twice = admin_client.post(url, follow=True).content.decode()
    assert "already invited" in twice
    admin_client.post(url, {"resend": "1"})
    assert [(i.is_resend, i.sent_by) for i in Invitation.objects.order_by("pk")] == [
        (False, org_admin), (True, org_admin)]


def test_members_see_the_link_but_no_send_button(client, cohort, member, ada):
    InterviewRoundFactory(cohort=cohort, number=1)
    client.force_login(member)
    html = client.get(reverse("applications:detail", args=[cohort.slug, ada.pk])).content.decode()
    assert links.make_ref(ada, 1) in html and "Send invitation" not in html


def test_bulk_invite_summarises_sent_and_skipped(admin_client, cohort, ada):
    InterviewRoundFactory(cohort=cohort, number=1)
    second = ApplicationFactory(cohort=cohort, status="waiting_second_round")
    done = ApplicationFactory(cohort=cohort, status="declined")
    stranger = ApplicationFactory(status="waiting_first_round")  # another cohort: ignored
    response = admin_client.post(reverse("scheduling:invite_selected", args=[cohort.slug]), {
        "application": [ada.pk, second.pk, done.pk, stranger.pk, "x"],
    }, follow=True)
    assert ("Sent 1 invitation; skipped 2: 1 no round configured, 1 not waiting for an interview."
            in response.content.decode())
    assert list(Invitation.objects.values_list("application", flat=True)) == [ada.pk]


def test_bulk_invite_with_nothing_selected_says_so(admin_client, cohort):
    response = admin_client.post(reverse("scheduling:invite_selected", args=[cohort.slug]), follow=True)
    assert "Select at least one application" in response.content.decode()


def test_bulk_invite_goes_back_to_the_filtered_tab_but_never_off_site(admin_client, cohort, ada):
    url = reverse("scheduling:invite_selected", args=[cohort.slug])
    back = reverse("applications:list", args=[cohort.slug]) + "?status=waiting_first_round"
    assert admin_client.post(url, {"application": [ada.pk], "next": back})["Location"] == back
    evil = admin_client.post(url, {"application": [ada.pk], "next": "https://evil.example/"})
    assert evil["Location"] == reverse("applications:list", args=[cohort.slug])


# --- the tab: Pipeline states, row actions, bulk ---------------------------------------------


def tab(admin_client, cohort):
    return admin_client.get(reverse("applications:list", args=[cohort.slug])).content.decode()


def test_tab_shows_not_invited_with_a_send_button_then_invited_and_reminded(admin_client, cohort, ada):
    InterviewRoundFactory(cohort=cohort, number=1)
    html = tab(admin_client, cohort)
    assert "Not invited" in html and f'id="invite-{ada.pk}"' in html
    assert f'formaction="{reverse("scheduling:invite", args=[cohort.slug, ada.pk])}"' in html
    assert 'form="bulk-invite"' in html and "Send invitations to selected" in html
    assert links.make_ref(ada, 1) in html and "Booking link" in html  # the row's copy-link action
    admin_client.post(reverse("scheduling:invite", args=[cohort.slug, ada.pk]))
    Invitation.objects.create(application=ada, round=1, entry="initial", kind="reminder", reminder_number=1,
                              to_email=ada.contact_email, booking_link="https://cal.com/x", subject="s",
                              body="b", state="sent")
    html = tab(admin_client, cohort)
    assert "Invited today (reminded 1×)" in html and f'id="invite-{ada.pk}"' not in html


def test_tab_without_rounds_shows_no_invitation_state_or_link(admin_client, cohort, ada):
    html = tab(admin_client, cohort)
    assert "Not invited" not in html and "Booking link</summary>" not in html


def test_tab_invitation_states_cost_a_bounded_number_of_queries(admin_client, cohort, django_assert_max_num_queries):
    InterviewRoundFactory(cohort=cohort, number=1)
    InterviewRoundFactory(cohort=cohort, number=2)
    ApplicationFactory.create_batch(30, cohort=cohort, status="waiting_first_round")
    tab(admin_client, cohort)
    with django_assert_max_num_queries(16) as few:
        tab(admin_client, cohort)
    ApplicationFactory.create_batch(20, cohort=cohort, status="waiting_second_round")
    with django_assert_max_num_queries(len(few.captured_queries)):
        tab(admin_client, cohort)


def test_members_get_no_checkboxes_or_send_buttons(client, cohort, member, ada):
    InterviewRoundFactory(cohort=cohort, number=1)
    client.force_login(member)
    html = client.get(reverse("applications:list", args=[cohort.slug])).content.decode()
    assert "Not invited" in html and "bulk-invite" not in html and "Send invitation" not in html


def test_wrong_round_booking_shows_on_the_pipeline(admin_client, client, cohort, ada):
    InterviewRoundFactory(cohort=cohort, number=2, event_types=["final-round-interview"])
    post(client, cohort, sample("booking_created", type="final-round-interview"))
    ada.refresh_from_db()
    assert (ada.status, ada.interview_round) == ("waiting_first_round", 2)
    assert "Booked the second-round interview while waiting for round 1" in tab(admin_client, cohort)
    wrong = admin_client.get(reverse("applications:list", args=[cohort.slug]) + "?pipeline=wrong_round")
    assert ada.applicant_name in wrong.content.decode()


def test_csv_export_has_the_invited_at_column(admin_client, cohort, ada):
    import csv
    import io

    InterviewRoundFactory(cohort=cohort, number=1)
    admin_client.post(reverse("scheduling:invite", args=[cohort.slug, ada.pk]))
    other = ApplicationFactory(cohort=cohort, status="waiting_first_round")
    response = admin_client.get(reverse("applications:list", args=[cohort.slug]) + "?format=csv")
    rows = {r["public_id"]: r for r in csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode()))}
    invited = Invitation.objects.get().created_at
    assert rows[ada.public_id]["invited_at_utc"] == invited.isoformat().replace("+00:00", "Z")
    assert rows[other.public_id]["invited_at_utc"] == ""
