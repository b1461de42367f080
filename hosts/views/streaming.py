"""Streaming a body to the browser under ASGI without holding it: Django would read a sync
iterator whole into a list, so a reader thread pulls the chunks (from LXD, from a file) and
hands them to the event loop, at most PREFETCH ahead of what was sent; dashboard/backpressure.py
paces the sending to the client's reading.  Reading ahead keeps the source busy while a chunk
is on its way to the client: pulling each chunk only once the previous one was sent left both
ends idle in turn (a backup export went at a quarter of LXD's own speed)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Callable, Iterable, Iterator

from django.core.handlers.asgi import ASGIRequest
from django.http import StreamingHttpResponse
from django.utils.http import content_disposition_header

from ..concurrency import STREAMS

CHUNK = 4 * 1024 * 1024
PREFETCH = 2  # chunks read ahead
_END = object()


def _read(
    chunks: Iterator[bytes],
    put: Callable,
    room: threading.Semaphore,
    stop: threading.Event,
    close: Callable[[], None],
) -> None:
    try:
        for chunk in chunks:
            while not room.acquire(timeout=0.5):
                if stop.is_set():
                    return
            if stop.is_set():
                return
            put(chunk)
        put(_END)
    except BaseException as exc:  # the source broke: the response ends with it
        if not stop.is_set():
            put(exc)
    finally:
        # The source is closed by the thread that reads it, and by no other: closed from the
        # event loop's thread while a read was under way, urllib3's own clean-up of that read
        # could hand the connection back to its pool with its socket still open and LXD's
        # unread data in it (seen in full test runs: the stream held after the client left).
        close()


class AsyncBody:
    """The body of a streamed response under ASGI, with a close() Django calls.

    When the client goes away, Django stops iterating the response's own wrappers and calls
    response.close(), but does not close the async generator underneath: that one runs its
    `finally` only when it is collected, which with a reference cycle waits for the garbage
    collector.  Meanwhile the source stayed open: an LXD file download held its stream (and
    the file, inside the instance) for as long as 15 s.  So the reader is stopped from here."""

    def __init__(self, chunks: Iterator[bytes], close: Callable[[], None]):
        self.chunks, self.source_close = chunks, close
        self.stop = threading.Event()
        self.reading = False  # a reader owns the source (and closes it)

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._pump()

    async def _pump(self) -> AsyncIterator[bytes]:
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue = asyncio.Queue()
        room, stop = threading.Semaphore(PREFETCH), self.stop

        def put(item) -> None:
            try:
                loop.call_soon_threadsafe(queue.put_nowait, item)
            except RuntimeError:  # the loop is closed: nobody reads any more
                stop.set()

        # At most STREAMS' threads read at once per process; one more waits for a reader.
        self.reading = True
        STREAMS.submit(_read, self.chunks, put, room, stop, self.source_close)
        try:
            while True:
                item = await queue.get()
                if item is _END:
                    return
                if isinstance(item, BaseException):
                    raise item
                room.release()
                yield item
        finally:
            stop.set()  # the reader closes the source within half a second (or its read's timeout)

    def close(self) -> None:
        """Called by Django in a worker thread once the response is over, sent or not: the
        reader stops and closes the source (_read); a body no reader took is closed here."""
        self.stop.set()
        if not self.reading:
            self.source_close()


def _sync_chunks(chunks: Iterator[bytes], close: Callable[[], None]) -> Iterator[bytes]:
    try:
        yield from chunks
    finally:
        close()


def _body(
    request, chunks: Iterator[bytes], close: Callable[[], None]
) -> Iterable[bytes] | AsyncIterator[bytes]:
    if isinstance(request, ASGIRequest):
        return AsyncBody(chunks, close)
    return _sync_chunks(chunks, close)  # WSGI (Django's test client): a plain iterator


def lxd_chunks(response) -> Iterator[bytes]:
    """A host's streamed answer, in CHUNK pieces (close it with response.close)."""
    return response.iter_content(chunk_size=CHUNK)


def file_chunks(handle) -> Iterator[bytes]:
    """An open file, in CHUNK pieces (close it with handle.close)."""
    return iter(lambda: handle.read(CHUNK), b"")


def streamed_download(
    request, chunks: Iterator[bytes], close: Callable[[], None], *, filename: str, size: int | None
) -> StreamingHttpResponse:
    """A download to the browser, streamed (never whole in memory) and paced to its reading.
    `close` ends the source (the host's answer, a file)."""
    streamed = StreamingHttpResponse(_body(request, chunks, close), content_type="application/octet-stream")
    if size is not None:
        streamed["Content-Length"] = str(size)
    streamed["Content-Disposition"] = content_disposition_header(True, filename)
    streamed["X-Content-Type-Options"] = "nosniff"
    return streamed
