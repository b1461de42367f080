"""Streaming a body to the browser under ASGI without holding it: Django would read a sync
iterator whole into a list, so chunks are pulled one by one from a worker thread (and
dashboard/backpressure.py paces them to the client's reading)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterable, Iterator

from asgiref.sync import sync_to_async
from django.core.handlers.asgi import ASGIRequest

CHUNK = 1024 * 1024


async def async_chunks(chunks: Iterator[bytes], close: Callable[[], None]) -> AsyncIterator[bytes]:
    pull = sync_to_async(next, thread_sensitive=False)
    try:
        while (chunk := await pull(chunks, None)) is not None:
            yield chunk
    finally:
        # The client may have gone while a read runs in the worker: close from here (closing
        # the generator would race with that read).
        close()


def _sync_chunks(chunks: Iterator[bytes], close: Callable[[], None]) -> Iterator[bytes]:
    try:
        yield from chunks
    finally:
        close()


def _body(
    request, chunks: Iterator[bytes], close: Callable[[], None]
) -> Iterable[bytes] | AsyncIterator[bytes]:
    if isinstance(request, ASGIRequest):
        return async_chunks(chunks, close)
    return _sync_chunks(chunks, close)  # WSGI (Django's test client): a plain iterator


def lxd_body(request, response) -> Iterable[bytes] | AsyncIterator[bytes]:
    """A streamed response from a host, chunk by chunk."""
    return _body(request, response.iter_content(chunk_size=CHUNK), response.close)


def file_body(request, path) -> Iterable[bytes] | AsyncIterator[bytes]:
    handle = open(path, "rb")  # noqa: SIM115 - closed when the body is done or dropped
    return _body(request, iter(lambda: handle.read(CHUNK), b""), handle.close)
