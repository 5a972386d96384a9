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
