"""Keep htmx requests from swapping a login page or a 403 page into a fragment."""

from urllib.parse import urlsplit

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.views import redirect_to_login
from django.http import HttpResponse
from django.shortcuts import resolve_url
from django.utils.http import url_has_allowed_host_and_scheme


def _page_url(request):
    """Return the path (and query) of the page the htmx request came from, or "/"."""
    current = request.headers.get("HX-Current-URL", "")
    if current and url_has_allowed_host_and_scheme(current, allowed_hosts={request.get_host()}):
        parts = urlsplit(current)
        return parts.path + (f"?{parts.query}" if parts.query else "")
    return "/"


def _hx_redirect(url):
    response = HttpResponse(status=200)
    response["HX-Redirect"] = url
    return response


def htmx_auth_redirect(get_response):
    """Turn an htmx request's login redirect or 403 into `HX-Redirect`, so the browser navigates.

    An expired session (login_required's 302 to the login page, or a 403 to an
    anonymous user) goes to the login page with `next` = the page the user was on,
    not the fragment's URL. A 403 to a signed-in user reloads that page with a
    message saying they lack the right. Non-htmx requests are left alone.
    """
    login_path = urlsplit(resolve_url(settings.LOGIN_URL)).path

    def middleware(request):
        response = get_response(request)
        if not getattr(request, "htmx", False):
            return response
        if response.status_code == 302 and urlsplit(response.get("Location", "")).path == login_path:
            return _hx_redirect(redirect_to_login(_page_url(request))["Location"])
        if response.status_code == 403:
            user = getattr(request, "user", None)
            if user is None or not user.is_authenticated:
                return _hx_redirect(redirect_to_login(_page_url(request))["Location"])
            messages.error(request, "You do not have permission to do that. Ask an org admin of this organization.")
            return _hx_redirect(_page_url(request))
        return response

    return middleware
