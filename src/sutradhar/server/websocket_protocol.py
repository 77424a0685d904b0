"""uvicorn's `websockets-sansio` WebSocket protocol, with a short path for the frames calls send.

A phone call sends a small text frame every 20 ms for as long as it lasts, so at 300 calls the
server parses 15,000 frames a second before any turn. The stock protocol hands every frame to the
`websockets` sans-I/O parser (a chain of generators, a `Frame` object, an `Opcode` enum lookup and
an event list per frame): py-spy put 11 % of a loaded worker's main thread there. Here a complete,
masked, unfragmented text or binary frame of a connection without extensions is read directly
(header, then the payload unmasked by `websockets`' own C `apply_mask`) and queued for the app
exactly as the stock protocol queues it. Every other frame (ping, pong, close, a fragment, an
invalid header, an oversized or non-UTF-8 message) is handed whole to the stock parser, so
`websockets` keeps deciding everything the protocol says about them; after a fragment, a close or
an error the connection stays on the stock path. Frames split across reads wait in a buffer of
our own until complete, so the stock parser only ever sees whole frames, at a frame boundary.

The app's receive queue skips `asyncio`'s running-loop lookup on every `get()`: on Python 3.11
that lookup makes a `getpid()` system call (2 % of the same thread), and this queue only ever
lives on the loop that made it.

Reading pauses when `PAUSE_AT` messages wait for the app, not at the first: the stock protocol
pauses the socket for every message and resumes it when the app takes it, which is two event-loop
watcher changes (and kernel calls to apply them) per 20 ms frame for a call whose app keeps up.
The bound still holds: an app that stops reading leaves at most `PAUSE_AT` messages queued, then
TCP pushes back on the sender as before.

A media stream can take its messages without the queue: the app finds this protocol in its scope
(`scope["extensions"][MEDIA_SINK]`) and `set_sink(sink)`s a function that is handed each whole
data message while the app waits in `receive()` with nothing queued, so order cannot change. The
sink returns None when it has dealt with the message, or a message to queue for the app instead.
Waking the app's task and passing the message up the ASGI receive chain cost a bare app about a
quarter of its CPU per 20 ms frame (22-25 -> 17.5 us).

The other way, `send_now(message)` writes a data message to the socket at once, as the stock
`send` would have written it (one unmasked, unfragmented frame), when the connection is on the
short path, open and not pushing back; otherwise it returns False and the app sends through ASGI
as before, where the stock protocol waits for the write buffer and says how the socket closed.
Each agent audio message otherwise climbs Starlette's state checks, the middleware's send
wrappers and the protocol's `send` coroutine, and has `websockets` build a `Frame` for it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.protocol import State

from sutradhar.telephony.transport import MEDIA_SINK

try:
    from websockets.speedups import apply_mask
except ImportError:  # pragma: no cover - websockets without its C extension
    from websockets.utils import apply_mask

TEXT_FIN, BINARY_FIN = 0x81, 0x82  # FIN set, RSV bits clear
HANDSHAKE_END = b"\r\n\r\n"
PAUSE_AT = 16  # messages queued for the app before reading pauses (320 ms of a phone call's audio)


class _LoopQueue(asyncio.Queue):  # type: ignore[type-arg]
    """An asyncio.Queue bound to the loop it was made on, without a lookup per `get()`."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__()
        self._loop = loop

    def _get_loop(self) -> asyncio.AbstractEventLoop:
        return self._loop  # type: ignore[return-value]


class MediaWebSocketProtocol(WebSocketsSansIOProtocol):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.queue = _LoopQueue(self.loop)
        self._fast: bool | None = None  # None: the handshake is not over yet
        self._partial = b""  # the start of a frame whose end has not arrived
        self._sink: Callable[[dict[str, Any]], dict[str, Any] | None] | None = None
        self._waiting = False  # the app is in receive(), waiting for a message

    def handle_connect(self, event: Any) -> None:
        super().handle_connect(event)
        if getattr(self, "scope", None) is not None:  # the app's task has not run yet: it will see this
            self.scope["extensions"][MEDIA_SINK] = self

    def set_sink(self, sink: Callable[[dict[str, Any]], dict[str, Any] | None] | None) -> None:
        """Hand whole data messages to `sink` while the app waits with nothing queued (None: stop)."""
        self._sink = sink

    def take_queued(self) -> list[dict[str, Any]]:
        """The messages waiting for the app, taken out: for an app that will not receive again and
        must release what its sink left there."""
        taken = []
        while not self.queue.empty():
            taken.append(self.queue.get_nowait())
        if self.read_paused:  # as the stock receive() does once the queue is empty
            self.read_paused = False
            self.transport.resume_reading()
        return taken

    async def receive(self) -> Any:
        self._waiting = True
        try:
            return await super().receive()
        finally:
            self._waiting = False

    def send_now(self, message: str | bytes) -> bool:
        """Write one data message now; False when it must go through the stock `send` instead."""
        if (not self._fast or self.close_sent or self.disconnected or not self.writable.is_set()
                or self.conn.state is not State.OPEN):
            return False  # the handshake, extensions, a close, a full buffer: the stock path decides
        if type(message) is str:
            payload, head = message.encode(), TEXT_FIN
        else:
            payload, head = message, BINARY_FIN
        n = len(payload)
        if n < 126:
            header = bytes((head, n))
        elif n < 65536:
            header = bytes((head, 126)) + n.to_bytes(2, "big")
        else:
            header = bytes((head, 127)) + n.to_bytes(8, "big")
        self.transport.write(header + payload)
        return True

    def data_received(self, data: bytes) -> None:
        if self._fast:
            self._receive_frames(self._partial + data if self._partial else data)
            return
        if self._fast is None and self.handshake_initiated:
            # The first bytes after the handshake: the stock parser sits at a frame boundary.
            conn = self.conn
            self._fast = (conn.state is State.OPEN and not conn.extensions and not conn.reader.buffer
                          and conn.current_size is None)
            if self._fast:
                self._receive_frames(data)
                return
        was_initiated = self.handshake_initiated
        super().data_received(data)
        if not was_initiated and self.handshake_initiated and not data.endswith(HANDSHAKE_END):
            self._fast = False  # frames came in the handshake's own read: the stock parser has them

    def _receive_frames(self, data: bytes) -> None:
        if self.conn.state is not State.OPEN:  # closing: the stock path sees the close through
            self._stock(data)
            return
        size = len(data)
        pos = 0
        max_size = self.conn.max_message_size
        while size - pos >= 2:
            head1, head2 = data[pos], data[pos + 1]
            length = head2 & 0x7F
            start = pos + 2
            if length == 126:
                start += 2
                if size < start:
                    break
                length = int.from_bytes(data[pos + 2:start], "big")
            elif length == 127:
                start += 8
                if size < start:
                    break
                length = int.from_bytes(data[pos + 2:start], "big")
            if (max_size is not None and length > max_size) or not head2 & 0x80:
                self._stock(data[pos:])  # too big or unmasked: the stock parser fails it as it should
                return
            end = start + 4 + length
            if size < end:
                break
            if head1 == TEXT_FIN or head1 == BINARY_FIN:
                payload = apply_mask(data[start + 4:end], data[start:start + 4])
                if head1 == TEXT_FIN:
                    try:
                        message: dict[str, Any] = {"type": "websocket.receive", "text": payload.decode()}
                    except UnicodeDecodeError:
                        self._stock(data[pos:])  # the stock path answers with close 1007
                        return
                else:
                    message = {"type": "websocket.receive", "bytes": payload}
                self._deliver(message)
            elif head1 & 0x0F >= 0x8 and head1 & 0x80:  # a whole control frame: ping, pong, close
                super().data_received(data[pos:end])
                if self.conn.state is not State.OPEN or self.conn.parser_exc is not None:
                    self._stock(data[end:])
                    return
            else:  # a fragment, RSV bits, an unknown opcode: the stock parser from here on
                self._stock(data[pos:])
                return
            pos = end
        self._partial = data[pos:] if pos < size else b""

    def _deliver(self, message: dict[str, Any]) -> None:
        """What the stock `send_receive_event_to_app` does with a whole message."""
        if self.close_sent:  # the app is past websocket.close: reads go on until the peer's close
            return
        queue = self.queue
        if self._sink is not None and self._waiting and not queue.qsize():
            message = self._sink(message)  # type: ignore[assignment]
            if message is None:
                return
        queue.put_nowait(message)  # type: ignore[arg-type]
        if not self.read_paused and queue.qsize() >= PAUSE_AT:
            self.read_paused = True
            self.transport.pause_reading()

    def _stock(self, rest: bytes) -> None:
        """Hand the connection to the stock parser for good, starting at a frame boundary."""
        self._fast = False
        self._partial = b""
        if rest:
            super().data_received(rest)
