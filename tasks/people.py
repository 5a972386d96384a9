"""People: users, their roles (auth groups named by role id) and their profiles."""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import transaction
from rest_framework.authtoken.models import Token

from processes.errors import InvalidInput, NotFound

from .models import Profile

ROLE_ID_CHARS = set("abcdefghijklmnopqrstuvwxyz0123456789._-")


@dataclass(frozen=True)
class WorkflowUser:
    user: object
    token: str
    created: bool


def save_workflow_user(
    username: str,
    *,
    roles: list[str],
    manager: str | None = None,
    password: str | None = None,
    staff: bool = False,
    superuser: bool = False,
    capacity: int | None = None,
    available: bool | None = None,
    email: str = "",
) -> WorkflowUser:
    """Create or update a user: its roles are exactly `roles`, its manager and profile set."""
    User = get_user_model()
    if not username or len(username) > 150:
        raise InvalidInput("a user name of 1 to 150 characters is required")
    bad = [role for role in roles if not role or not set(role) <= ROLE_ID_CHARS]
    if bad:
        raise InvalidInput(f"invalid role id {bad[0]!r}: use lower-case letters, digits, '.', '_' and '-'")
    with transaction.atomic():
        manager_user = None
        if manager:
            manager_user = User.objects.filter(username=manager).first()
            if manager_user is None:
                raise NotFound(f"no user named {manager!r} to be the manager")
            if manager == username:
                raise InvalidInput("a user cannot be its own manager")
        user, created = User.objects.get_or_create(username=username, defaults={"email": email})
        if password:
            user.set_password(password)
        elif created:
            user.set_unusable_password()
        user.is_staff = staff or superuser or (user.is_staff and not created)
        user.is_superuser = superuser or (user.is_superuser and not created)
        user.save()
        groups = [Group.objects.get_or_create(name=role)[0] for role in roles]
        user.groups.set(groups)
        profile, _ = Profile.objects.get_or_create(user=user)
        if manager is not None:
            profile.manager = manager_user
        if capacity is not None:
            profile.capacity = capacity
        if available is not None:
            profile.available = available
        profile.save()
        token, _ = Token.objects.get_or_create(user=user)
    return WorkflowUser(user=user, token=token.key, created=created)
