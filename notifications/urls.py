"""Included by gndp.urls at the root: the pages and the `api/notifications` endpoints."""

from django.urls import path

from . import api, views

urlpatterns = [
    path("notifications/", views.notification_list, name="notifications-page"),
    path("notifications/read-all/", views.notification_read_all, name="notifications-read-all-page"),
    path("notifications/<int:notification_id>/open/", views.notification_open, name="notification-open"),
    path("notifications/<int:notification_id>/read/", views.notification_read, name="notification-read-page"),
    path("profile/", views.profile, name="profile-page"),
    path("api/notifications", api.NotificationListView.as_view(), name="notification-list"),
    path("api/notifications/unread-count", api.UnreadCountView.as_view(), name="notification-unread-count"),
    path("api/notifications/read-all", api.MarkAllReadView.as_view(), name="notification-read-all"),
    path("api/notifications/preferences", api.PreferencesView.as_view(), name="notification-preferences"),
    path("api/notifications/<str:notification_id>/read", api.MarkReadView.as_view(), name="notification-read"),
]
