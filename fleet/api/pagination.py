"""How the API's long lists come: in pages, newest first, by a cursor the client sends back."""

from django.utils.dateparse import parse_datetime
from rest_framework.exceptions import NotFound
from rest_framework.pagination import CursorPagination


class Pages(CursorPagination):
    """Pages of at most 100 rows (`?limit=` up to 1,000). The cursor is the client's to send
    back, so its position is untrusted text: one that valid_position() refuses is a 404
    here, not a failed query."""

    page_size = 100
    page_size_query_param = "limit"
    max_page_size = 1000

    def valid_position(self, position):
        raise NotImplementedError

    def decode_cursor(self, request):
        cursor = super().decode_cursor(request)
        position = cursor and cursor.position
        if position is not None and not self.valid_position(position):
            raise NotFound(self.invalid_cursor_message)
        return cursor


class NewestFirst(Pages):
    """By time, newest first: events and deployments."""

    ordering = ("-created_at", "-id")

    def valid_position(self, position):
        try:
            return parse_datetime(position) is not None
        except ValueError:
            return False


class NewestIdFirst(Pages):
    """By id, newest first: incidents and deliveries."""

    ordering = ("-id",)

    def valid_position(self, position):
        return position.isascii() and position.isdigit() and len(position) < 19
