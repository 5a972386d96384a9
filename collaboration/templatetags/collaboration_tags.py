from django import template

from collaboration.views import discussion_context

register = template.Library()


@register.inclusion_tag("collaboration/_discussion.html", takes_context=True)
def discussion(context, process=None, task=None):
    """The discussion panel of a process page or a task page, for the signed-in user."""
    user = context["request"].user
    data = discussion_context(user, process=process, task=task)
    return {**data, "csrf_token": context.get("csrf_token"), "request": context["request"]}
