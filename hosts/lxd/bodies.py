"""Reading what a host sends, never more than we decided to hold in memory."""

from __future__ import annotations

import requests

from .errors import ResponseTooLarge

CHUNK = 64 * 1024


def read_at_most(response: requests.Response, limit: int) -> tuple[bytes, bool]:
    """Up to `limit` bytes of a streamed body, and whether it had more.  Closes nothing."""
    data = bytearray()
    for chunk in response.iter_content(chunk_size=min(CHUNK, limit + 1)):
        data += chunk
        if len(data) > limit:
            return bytes(data[:limit]), True
    return bytes(data), False


def load_body(response: requests.Response, limit: int, label: str) -> bytes:
    """Read a streamed response's whole body, as requests does when not streaming, but
    refuse one larger than `limit` (ResponseTooLarge); `.content` and `.json()` then use it.
    The response is closed either way (a fully read one goes back to the pool)."""
    if response._content is not False:  # already read: requests' own cache of the body
        return response._content
    try:
        length = response.headers.get("Content-Length", "")
        if length.isdigit() and int(length) > limit:
            raise ResponseTooLarge(label, "an answer", limit)
        data, more = read_at_most(response, limit)
        if more:
            raise ResponseTooLarge(label, "an answer", limit)
        response._content = data
    finally:
        response.close()
    return data
