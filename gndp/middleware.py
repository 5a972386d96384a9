from django.shortcuts import render

from processes.errors import ServiceError


class ServiceErrorPageMiddleware:
    """A refusal from a service, raised while rendering a page, becomes a page with the
    same status the API would give (404 for what the caller may not see), never a 500."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request, exception):
        if isinstance(exception, ServiceError) and not request.path.startswith("/api/"):
            return render(request, "error.html", {"error": exception}, status=exception.status)
        return None
