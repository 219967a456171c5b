"""The API's JSON parser: a body too large is refused before it is read (413), and one
nested deeper than Python's decoder goes is bad JSON (400).

DRF's parser reads the request's stream whole, past Django's DATA_UPLOAD_MAX_MEMORY_SIZE,
and lets the decoder's RecursionError (past some thousand levels) through as a server
error; such bodies are no more than malformed or oversized input.
"""

import io

from django.conf import settings
from rest_framework import parsers, status
from rest_framework.exceptions import APIException, ParseError

TOO_DEEP = "JSON parse error - the body is nested too deeply."


class TooLarge(APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_code = "too_large"


class JSONParser(parsers.JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        limit = settings.FLEET_API_MAX_BODY
        request = (parser_context or {}).get("request")
        try:
            declared = int(request.META.get("CONTENT_LENGTH") or 0) if request else 0
        except ValueError:
            raise ParseError("Bad Content-Length.") from None
        if declared > limit:
            raise TooLarge(f"The body may have at most {limit} bytes.")
        # A body sent without a length is read no further than the limit.
        raw = stream.read(limit + 1) if stream is not None else b""
        if len(raw) > limit:
            raise TooLarge(f"The body may have at most {limit} bytes.")
        try:
            return super().parse(io.BytesIO(raw), media_type, parser_context)
        except RecursionError:
            raise ParseError(TOO_DEEP) from None
