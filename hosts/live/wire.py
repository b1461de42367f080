"""A push's way out to the browsers: the same bytes for every socket of one audience.

A push (one event's fragments for one audience: role and page) is joined into websocket
messages and framed once; each socket of that audience then gets those exact frame bytes
written to its connection.  The ASGI path (consumer.send -> daphne -> autobahn) would build a
dict, hop through a coroutine, encode the text and frame it again for every socket: with
hundreds of sockets that, not the rendering, was the cost of an event.

Daphne serves a websocket with an autobahn protocol, reached through the ASGI `send` daphne
gives the application (partial(server.handle_reply, protocol), kept in the scope by
KeepServerSend, as dashboard/backpressure.py finds the HTTP request); autobahn's PreparedMessage is
its own API for this (a message framed once, sent on many connections).  Anything else (an
ASGI test communicator, another server) gets the plain ASGI path: `attach` returns None.

A browser that stops reading must not make the server buffer without bound: the wire is the
connection's streaming producer, so Twisted tells it when the connection's write buffer is
full (pauseProducing) and drained again (resumeProducing).  While paused, the consumer keeps
pushes in its mailbox (the latest per subject) and sends them on resume.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable

log = logging.getLogger(__name__)


def joinable(frame: str) -> bool:
    """Frames that may share one websocket message (table parts must travel alone: HTML
    parses a bare <tr> or <td> only among its own kind)."""
    return not frame.lstrip().startswith(("<tr", "<td", "<tbody"))


def messages(frames: list[str]) -> list[str]:
    """Frames joined into as few websocket messages as HTML parsing allows, in order."""
    out: list[str] = []
    batch: list[str] = []
    for frame in frames:
        if joinable(frame):
            batch.append(frame)
            continue
        if batch:
            out.append("".join(batch))
            batch = []
        out.append(frame)
    if batch:
        out.append("".join(batch))
    return out


class Push:
    """One event's websocket messages for one audience, framed on first use, then shared."""

    __slots__ = ("texts", "_prepared")

    def __init__(self, frames: list[str]):
        self.texts = messages(frames)
        self._prepared = None

    def prepared(self, factory) -> list:
        if self._prepared is None:
            self._prepared = [factory.prepareMessage(text.encode()) for text in self.texts]
        return self._prepared


class Wire:
    """Direct writes to one daphne websocket connection."""

    def __init__(self, protocol, on_resume: Callable[[], None]):
        self.protocol = protocol
        self.on_resume = on_resume
        self.paused = False
        transport = protocol.transport
        # Daphne hands the upgraded connection over from its HTTP channel, which stays
        # registered as the transport's producer although it is done with the connection.
        if getattr(transport, "producer", None) is not None:
            transport.unregisterProducer()
        transport.registerProducer(self, True)

    @property
    def open(self) -> bool:
        return self.protocol.state == self.protocol.STATE_OPEN

    def write(self, push: Push) -> None:
        if not self.open:
            return
        for message in push.prepared(self.protocol.factory):
            self.protocol.sendPreparedMessage(message)

    def close(self) -> None:
        transport = self.protocol.transport
        if transport is not None and getattr(transport, "producer", None) is self:
            transport.unregisterProducer()

    # IPushProducer, called by Twisted
    def pauseProducing(self) -> None:
        self.paused = True

    def resumeProducing(self) -> None:
        self.paused = False
        self.on_resume()

    def stopProducing(self) -> None:
        self.paused = True


SERVER_SEND = "dashboard.server_send"


class KeepServerSend:
    """ASGI middleware, outermost on websockets: the server's own `send` in the scope, since
    the middleware below (sessions) hands consumers a wrapper of it."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        return await self.app({**scope, SERVER_SEND: send}, receive, send)


def attach(scope: dict, on_resume: Callable[[], None]) -> Wire | None:
    """The direct wire under the server's `send`, if daphne serves it; None otherwise."""
    try:
        from autobahn.twisted.websocket import WebSocketServerProtocol
    except ImportError:
        return None
    send = scope.get(SERVER_SEND)
    if not isinstance(send, functools.partial) or not send.args:
        return None
    protocol = send.args[0]
    if not isinstance(protocol, WebSocketServerProtocol) or protocol.transport is None:
        return None
    try:
        return Wire(protocol, on_resume)
    except Exception:  # a transport that takes no producer: the ASGI path still works
        log.warning("no direct writes to %r", protocol, exc_info=True)
        return None
