from django.shortcuts import render

from gndp import db_faults
from processes.errors import ServiceError


class ServiceErrorPageMiddleware:
    """A refusal from a service, raised while rendering a page, becomes a page with the
    same status the API would give (404 for what the caller may not see), never a 500; a
    database that is gone, a 503 to try again later."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request, exception):
        if isinstance(exception, ServiceError) and not request.path.startswith("/api/"):
            return render(request, "error.html", {"error": exception}, status=exception.status)
        if db_faults.is_transient(exception):
            # The database is gone or aborted the transaction: 503, try again, not a 500.
            return db_faults.unavailable_response(request.path, db_faults.error_code(exception))
        return None


class RejectNulBytesMiddleware:
    """A NUL byte in a URL or query string can never be valid text here, and PostgreSQL
    refuses it with an error: answer 400 before it reaches a query."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        query = request.META.get("QUERY_STRING", "")
        if "\x00" in request.path or "%00" in query or "\x00" in query:
            from django.http import HttpResponseBadRequest, JsonResponse

            if request.path.startswith("/api/"):
                body = {"error": {"code": "invalid", "message": "NUL bytes are not allowed", "details": {}}}
                return JsonResponse(body, status=400)
            return HttpResponseBadRequest("NUL bytes are not allowed")
        return self.get_response(request)
