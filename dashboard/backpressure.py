"""Backpressure for streamed responses under daphne.

Daphne's `send` returns at once and hands every body chunk to Twisted, which keeps in memory
whatever the client has not read yet.  A download streamed from LXD to a slow browser would so
pile up in the server (measured: a 64 MiB file read at 50 MiB/s grew daphne by 71 MiB).

Twisted has the remedy built in: a push producer registered on the request is paused when the
socket's send buffer is full and resumed when it drains.  This middleware registers one for
each response that streams (the first body message with more_body), and waits on it before
passing on each further chunk; the app's iterator then pulls from LXD no faster than the
client reads.  Daphne passes `send` as partial(server.handle_reply, protocol), which is where
the protocol (a twisted.web.http.Request) comes from; under any other server, or if that ever
changes, the middleware steps aside.
"""

from __future__ import annotations

import asyncio
import functools

SLACK = 2 * 1024 * 1024  # bytes queued past Twisted's pause before the sender waits
# Bytes per send() while streaming: Twisted's default (128 KiB) makes a 4 MiB part 32 turns of
# the event loop; measured on a backup export, a third of daphne's CPU time.
SEND_LIMIT = 1024 * 1024


class _Producer:
    """Twisted IPushProducer driving an asyncio.Event (the reactor runs on the asyncio loop).

    Twisted pauses as soon as 64 KiB wait in its buffer (and says so again on every write), and
    resumes only once the buffer is empty; stopping at the first pause would stall the stream
    every 64 KiB, so up to SLACK more bytes are accepted after a pause before the sender waits.
    """

    def __init__(self):
        self.writable = asyncio.Event()
        self.writable.set()
        self.paused = False
        self.since_pause = 0

    def pauseProducing(self):  # noqa: N802 - Twisted's interface
        if not self.paused:
            self.paused, self.since_pause = True, 0

    def resumeProducing(self):  # noqa: N802
        self.paused = False
        self.writable.set()

    def stopProducing(self):  # noqa: N802 - the connection is gone: stop waiting
        self.resumeProducing()

    async def room_for(self, size: int) -> None:
        if self.paused:
            self.since_pause += size
            if self.since_pause > SLACK:
                self.writable.clear()
                await self.writable.wait()


def _twisted_request(send):
    if isinstance(send, functools.partial) and send.args:
        request = send.args[0]
        if hasattr(request, "registerProducer") and hasattr(request, "unregisterProducer"):
            return request
    return None


class StreamBackpressure:
    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        request = _twisted_request(send) if scope["type"] == "http" else None
        if request is None:
            return await self.app(scope, receive, send)
        producer: _Producer | None = None

        async def paced_send(message):
            nonlocal producer
            if message["type"] == "http.response.body":
                more = message.get("more_body", False)
                channel = getattr(request, "channel", None)  # None once the client is gone
                if producer is None and more and channel is not None and request.producer is None:
                    producer = _Producer()
                    request.registerProducer(producer, True)
                    transport = getattr(channel, "transport", None)
                    if transport is not None and hasattr(transport, "SEND_LIMIT"):
                        transport.SEND_LIMIT = SEND_LIMIT
                    if getattr(channel, "_waitingForTransport", False):
                        producer.pauseProducing()
                elif producer is not None:
                    await producer.room_for(len(message.get("body", b"")))
                if producer is not None and not more:
                    _unregister(request, producer)
                    producer = None
            await send(message)

        try:
            return await self.app(scope, receive, paced_send)
        finally:
            if producer is not None:
                _unregister(request, producer)


def _unregister(request, producer: _Producer) -> None:
    if getattr(request, "channel", None) is not None and request.producer is producer:
        request.unregisterProducer()
