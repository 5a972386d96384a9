"""Row-level access: who sees which tasks and processes, and the object permissions
(django-guardian, direct-foreign-key tables) granted and revoked as work moves.

`visible_tasks` and `visible_processes` are the only ways the API and the pages list or
fetch tasks and processes, so no endpoint can forget the check.
"""

from __future__ import annotations

from functools import lru_cache

from django.contrib.auth.models import Permission
from django.db.models import Exists, OuterRef, Q, QuerySet

from processes.models import ProcessInstance, ProcessUserObjectPermission
from steps.rows import maker
from steps.writes import Writes

from .models import TaskInstance, TaskUserObjectPermission

TASK_PERMS = ("view_taskinstance", "change_taskinstance")
PROCESS_VIEW = "view_processinstance"


@lru_cache(maxsize=16)
def _permission_id(app_label: str, codename: str) -> int:
    return Permission.objects.get(content_type__app_label=app_label, codename=codename).pk


def _task_perm_ids() -> list[int]:
    return [_permission_id("tasks", codename) for codename in TASK_PERMS]


def roles_of(user) -> list[str]:
    # Read once per request; an API request's user arrives with them (gndp.api.authentication).
    cached = getattr(user, "_workflow_roles", None)
    if cached is None:
        cached = list(user.groups.values_list("name", flat=True))
        user._workflow_roles = cached
    return cached


def sees_everything(user, permission: str) -> bool:
    """Superusers, and the administrators given the `view_all_*` permission."""
    return user.is_superuser or user.has_perm(permission)


# --- selectors -------------------------------------------------------------------------------

def visible_tasks(user) -> QuerySet[TaskInstance]:
    """Tasks assigned to the user, its roles' unassigned queue, its reports' tasks, and any
    task it holds an object permission on."""
    tasks = TaskInstance.objects.all()
    if not user.is_authenticated:
        return tasks.none()
    if sees_everything(user, "tasks.view_all_tasks"):
        return tasks
    granted = TaskUserObjectPermission.objects.filter(
        content_object=OuterRef("pk"), user=user, permission_id=_permission_id("tasks", "view_taskinstance")
    )
    return tasks.filter(
        Q(assigned_to=user)
        | Q(assigned_to__isnull=True, role__in=roles_of(user))
        | Q(assigned_to__workflow_profile__manager=user)
        | Exists(granted)
    )


def visible_processes(user) -> QuerySet[ProcessInstance]:
    """Processes the user started or takes part in (holds or held one of their tasks), and
    those of the people it manages."""
    processes = ProcessInstance.objects.all()
    if not user.is_authenticated:
        return processes.none()
    if sees_everything(user, "processes.view_all_processes"):
        return processes
    own_tasks = TaskInstance.objects.filter(process=OuterRef("pk")).filter(
        Q(assigned_to=user) | Q(completed_by=user) | Q(assigned_to__workflow_profile__manager=user)
    )
    granted = ProcessUserObjectPermission.objects.filter(
        content_object=OuterRef("pk"), user=user, permission_id=_permission_id("processes", PROCESS_VIEW)
    )
    return processes.filter(
        Q(started_by=user) | Q(started_by__workflow_profile__manager=user) | Exists(own_tasks) | Exists(granted)
    )


# --- grants ----------------------------------------------------------------------------------

def grant_task_to_user(task: TaskInstance, user) -> None:
    TaskUserObjectPermission.objects.bulk_create(
        [TaskUserObjectPermission(content_object=task, user=user, permission_id=pid) for pid in _task_perm_ids()],
        ignore_conflicts=True,
    )


def revoke_task_from_user(task: TaskInstance, user) -> None:
    TaskUserObjectPermission.objects.filter(content_object=task, user=user).delete()


def revoke_tasks(task_ids: list[int]) -> None:
    """Every grant on these tasks: work on them is over (cancelled). Who held one still sees
    it as before: visibility follows the assignee, not the grant."""
    if task_ids:
        TaskUserObjectPermission.objects.filter(content_object_id__in=task_ids).delete()


def grant_new_tasks(tasks: list[TaskInstance], writes: Writes) -> None:
    """Grants for freshly routed tasks that have an assignee, in one statement whatever their
    number, sent with the step's other writes. A queued task needs none: its role's members
    see it through their roles (`visible_tasks`)."""
    perm_ids = _task_perm_ids()
    grant = maker(TaskUserObjectPermission).new
    writes.insert([grant(content_object_id=task.pk, user_id=task.assigned_to_id, permission_id=pid)
                   for task in tasks if task.assigned_to_id and task.kind != "system" for pid in perm_ids],
                  ignore_conflicts=True)