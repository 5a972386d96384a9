import factory
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission

START_ANY_JOURNEY = "processes.start_any_journey"


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    password = factory.django.Password("pw")

    @factory.post_generation
    def roles(self, create, extracted, **kwargs):
        for role in extracted or ():
            self.groups.add(Group.objects.get_or_create(name=role)[0])

    @factory.post_generation
    def permissions(self, create, extracted, **kwargs):
        """Model permissions by "app_label.codename", e.g. START_ANY_JOURNEY for a user who
        starts processes without being in any of the journey's roles."""
        for name in extracted or ():
            app_label, codename = name.split(".")
            self.user_permissions.add(Permission.objects.get(content_type__app_label=app_label, codename=codename))


class ProcessFactory(factory.Factory):
    """A process started through the service, as a person starts one (`user`), by default of
    the small test journey (`small_version`); its first tasks are routed and granted."""

    class Meta:
        model = "processes.ProcessInstance"

    workflow_id = "journey-small"
    context = factory.Dict({})
    user = None
    business_key = None

    @classmethod
    def _create(cls, model_class, **kwargs):
        from processes.services import start_process

        return start_process(**kwargs)

    _build = _create


class OpenTaskFactory(factory.Factory):
    """The open task of `atom_id` in a new process (or the one given)."""

    class Meta:
        model = "tasks.TaskInstance"

    process = factory.SubFactory(ProcessFactory)
    atom_id = "atom-apply"

    @classmethod
    def _create(cls, model_class, process, atom_id):
        from tasks.models import OPEN_TASK_STATUSES, TaskInstance

        return TaskInstance.objects.select_related("process", "assigned_to").get(
            process=process, atom_id=atom_id, status__in=OPEN_TASK_STATUSES)

    _build = _create
