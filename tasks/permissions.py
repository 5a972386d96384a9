"""Who may see and work one task: the same predicates as the selectors in `access`."""

from __future__ import annotations

from .access import roles_of, sees_everything, visible_tasks
from .models import TaskInstance


def can_work_task(user, task: TaskInstance) -> bool:
    if not user.is_authenticated or not user.is_active:
        return False
    if user.is_superuser:
        return True
    if task.assigned_to_id is not None:
        return task.assigned_to_id == user.pk
    return task.role in roles_of(user)


def can_see_task(user, task: TaskInstance) -> bool:
    if not user.is_authenticated:
        return False
    # Cheapest first: working a task needs no query beyond the user's roles.
    if can_work_task(user, task) or sees_everything(user, "tasks.view_all_tasks"):
        return True
    return visible_tasks(user).filter(pk=task.pk).exists()


def is_manager_of(manager, user) -> bool:
    profile = getattr(user, "workflow_profile", None)
    return profile is not None and profile.manager_id == manager.pk
