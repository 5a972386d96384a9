from rest_framework.pagination import LimitOffsetPagination

# Past every row there is: an offset beyond it means an empty page, where a larger number
# would overflow the databases' 64-bit OFFSET.
MAX_OFFSET = 2**62


class LimitPagination(LimitOffsetPagination):
    """`?limit=50&offset=0`; the body stays a plain list (the contract's `[Process]`), and
    the total and neighbours travel in headers."""

    default_limit = 50
    max_limit = 500
    def get_offset(self, request):
        return min(super().get_offset(request), MAX_OFFSET)

    def get_paginated_response(self, data):
        from rest_framework.response import Response

        response = Response(data)
        response["X-Total-Count"] = str(self.count)
        if self.get_next_link():
            response["Link"] = f'<{self.get_next_link()}>; rel="next"'
        return response

    def get_paginated_response_schema(self, schema):
        return schema
