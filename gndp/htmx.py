"""What the HTML views share when they answer htmx."""

from __future__ import annotations


def as_get(request):
    """The request, to be answered by a GET view: after an htmx POST succeeds, the page part
    it changed is rendered again in place of a redirect, which htmx would follow whole."""
    request.method = "GET"
    return request
