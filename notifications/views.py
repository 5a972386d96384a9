"""The notifications page, the bell's targets and the profile page with the preferences."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from gndp.htmx import as_get
from processes.errors import InvalidInput
from tasks.access import roles_of

from . import selectors, services
from .forms import PreferencesForm
from .kinds import CHANNELS, Channel

PAGE_SIZE = 100


@login_required
def notification_list(request):
    unread_only = request.GET.get("unread") == "1"
    notifications = selectors.notifications_for(request.user, unread_only=unread_only)
    return render(request, "notifications/list.html", {
        "notifications": notifications[:PAGE_SIZE], "unread_only": unread_only,
        "unread": selectors.unread_count(request.user),
    })


@login_required
@require_POST
def notification_open(request, notification_id: int):
    """Follow a notification: it counts as read. A POST (a button, not a link), since it
    changes state: a GET must not, or any page elsewhere could mark it read."""
    notification = services.notification_mark_read(user=request.user, notification_id=notification_id)
    if url_has_allowed_host_and_scheme(notification.url, allowed_hosts={request.get_host()}):
        return redirect(notification.url)
    return redirect("notifications-page")


@login_required
@require_POST
def notification_read(request, notification_id: int):
    services.notification_mark_read(user=request.user, notification_id=notification_id)
    return _back(request)


@login_required
@require_POST
def notification_read_all(request):
    marked = services.notifications_mark_all_read(user=request.user)
    if not request.htmx:
        messages.success(request, f"Marked {marked} notification(s) read.")
    return _back(request)


def _back(request):
    if request.htmx:
        return notification_list(as_get(request))
    return redirect("notifications-page")


@login_required
def profile(request):
    preference = selectors.preferences_for(request.user)
    form = PreferencesForm(request.POST or None, preference=preference, user=request.user)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            services.email_address_update(user=request.user, email=data["email"])
            services.preferences_update(user=request.user, channels=form.channels(), quiet_start=data["quiet_start"],
                                        quiet_end=data["quiet_end"], timezone_name=data["timezone"])
        except InvalidInput as exc:
            for field, message in exc.details.items():
                form.add_error(field if field in form.fields else None, message)
        else:
            messages.success(request, "Your notification preferences are saved.")
            return redirect("profile-page")
    profile_row = getattr(request.user, "workflow_profile", None)
    return render(request, "notifications/profile.html", {
        "form": form, "channels": [Channel(c).label for c in CHANNELS], "roles": roles_of(request.user),
        "manager": profile_row.manager if profile_row else None,
    }, status=400 if request.method == "POST" else 200)
