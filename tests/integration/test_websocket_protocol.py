"""The media WebSocket protocol (server/websocket_protocol.py) against uvicorn's stock one.

Both run under a real uvicorn on a loopback port with an echo app; a raw TCP client sends frames
made by `websockets`' own client protocol, cut into reads however a test likes (one byte at a
time, many frames in one write), plus frames no client library would send (unmasked, invalid
UTF-8, oversized, fragmented). Every case must come out the same on both: the messages the app
got, in order, what the server wrote back, and how the connection closed.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import uvicorn
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.client import ClientProtocol
from websockets.frames import Frame, Opcode
from websockets.protocol import State
from websockets.uri import parse_uri

from sutradhar.server.websocket_protocol import PAUSE_AT, MediaWebSocketProtocol
from sutradhar.telephony.transport import MEDIA_SINK
from sutradhar.testing.ports import free_port

MAX_SIZE = 4096
PROTOCOLS = {"stock": WebSocketsSansIOProtocol, "media": MediaWebSocketProtocol}


async def echo_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Echoes each message back (text as "t:<text>", bytes as "b:<length>") and, at the end,
    how it was told the socket closed."""
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    await receive()
    await send({"type": "websocket.accept"})
    while True:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            return
        if message.get("text") == "close please":
            await send({"type": "websocket.close", "code": 4000})
            return
        reply = f"t:{message['text']}" if message.get("text") is not None else f"b:{len(message['bytes'])}"
        await send({"type": "websocket.send", "text": reply})


@contextmanager
def serving(app: Any, kind: str) -> Iterator[uvicorn.Server]:
    """`app` under uvicorn with protocol `kind` on a loopback port (its `config.port`), in a thread."""
    config = uvicorn.Config(app, host="127.0.0.1", port=free_port(), log_level="critical", lifespan="on",
                            ws=PROTOCOLS[kind], ws_max_size=MAX_SIZE, ws_per_message_deflate=False)
    srv = uvicorn.Server(config)
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_until_complete, args=(srv.serve(),), daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while not srv.started:
            assert time.monotonic() < deadline and thread.is_alive(), "the server did not start"
            time.sleep(0.02)
        yield srv
    finally:
        srv.should_exit = True
        thread.join(5)


@pytest.fixture(scope="module", params=sorted(PROTOCOLS))
def server(request: pytest.FixtureRequest) -> Iterator[int]:
    """The echo app's port, under each protocol in turn (the test's id says which)."""
    with serving(echo_app, request.param) as srv:
        yield srv.config.port


class RawClient:
    """A WebSocket client over a plain socket: frames from websockets' ClientProtocol, sent as
    the test cuts them; replies parsed by the same protocol."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        self.proto = ClientProtocol(parse_uri(f"ws://127.0.0.1:{port}/"), max_size=None)
        self.proto.send_request(self.proto.connect())
        self._flush()
        while self.proto.state is not State.OPEN:
            self._read()
        self.proto.events_received()  # the handshake response
        self.frames: list[Frame] = []  # every frame the server sent, in order

    def _collect(self) -> None:
        self.frames += [e for e in self.proto.events_received() if isinstance(e, Frame)]

    def texts(self) -> list[str]:
        return [f.data.decode() for f in self.frames if f.opcode is Opcode.TEXT]

    def _flush(self) -> None:
        for chunk in self.proto.data_to_send():
            if chunk:
                self.sock.sendall(chunk)

    def _read(self) -> bool:
        data = self.sock.recv(65536)
        if data:
            self.proto.receive_data(data)
        else:
            self.proto.receive_eof()
        self._flush()
        return bool(data)

    def frame_bytes(self, frame: Frame) -> bytes:
        """One frame as this client would put it on the wire (masked)."""
        self.proto.send_frame(frame)
        return b"".join(self.proto.data_to_send())

    def send(self, data: bytes, cut: int | None = None) -> None:
        step = cut or len(data)
        for i in range(0, len(data), step):
            self.sock.sendall(data[i:i + step])
            if cut:
                time.sleep(0.001)  # separate reads on the server

    def replies(self, count: int, timeout: float = 5.0) -> list[str]:
        """The server's text frames so far, once there are `count` (or the time is up)."""
        deadline = time.monotonic() + timeout
        self._collect()
        while len(self.texts()) < count and time.monotonic() < deadline:
            if not self._read():
                break
            self._collect()
        return self.texts()

    def closed_with(self, timeout: float = 5.0) -> int | None:
        """The close code the server sent, once the connection is down."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if not self._read():
                    break
            except (ConnectionError, OSError):
                break
        received = self.proto.close_rcvd
        return received.code if received is not None else None


def text(client: RawClient, value: str) -> bytes:
    return client.frame_bytes(Frame(Opcode.TEXT, value.encode()))


def unmasked(opcode: int, payload: bytes) -> bytes:
    return bytes([0x80 | opcode, len(payload)]) + payload


def masked(head1: int, payload: bytes) -> bytes:
    """A frame with any first byte, masked with a zero key (the payload unchanged)."""
    n = len(payload)
    length = bytes([0x80 | n]) if n < 126 else bytes([0x80 | 126]) + n.to_bytes(2, "big")
    return bytes([head1]) + length + b"\0\0\0\0" + payload


def test_many_frames_in_one_write_and_frames_cut_byte_by_byte(server: int) -> None:
    client = RawClient(server)
    burst = b"".join(text(client, f"frame {i}") for i in range(50))
    client.send(burst)
    assert client.replies(50) == [f"t:frame {i}" for i in range(50)]
    big = "x" * 300  # a 16-bit length, as a Twilio media message has
    client.send(text(client, big) + client.frame_bytes(Frame(Opcode.BINARY, b"\x01" * 200)), cut=1)
    assert client.replies(52)[50:] == [f"t:{big}", "b:200"]


def test_frames_split_across_reads_keep_their_order(server: int) -> None:
    client = RawClient(server)
    first, second = text(client, "one"), text(client, "two")
    client.send(first + second[:3])
    time.sleep(0.05)
    client.send(second[3:])
    assert client.replies(2) == ["t:one", "t:two"]
    header_only = text(client, "three")
    client.send(header_only[:1])  # half a header, then the rest
    time.sleep(0.05)
    client.send(header_only[1:])
    assert client.replies(3) == ["t:one", "t:two", "t:three"]


def test_ping_gets_its_pong_between_messages(server: int) -> None:
    client = RawClient(server)
    client.send(text(client, "before") + client.frame_bytes(Frame(Opcode.PING, b"are you there"))
                + text(client, "after"))
    assert client.replies(2) == ["t:before", "t:after"]
    kinds = [(f.opcode, f.data) for f in client.frames]
    # the pong goes out as the ping is parsed, before the app has echoed the message before it
    assert kinds == [(Opcode.PONG, b"are you there"), (Opcode.TEXT, b"t:before"), (Opcode.TEXT, b"t:after")]


def test_fragmented_message_is_one_message_then_frames_go_on(server: int) -> None:
    client = RawClient(server)
    parts = (client.frame_bytes(Frame(Opcode.TEXT, b"frag", fin=False))
             + client.frame_bytes(Frame(Opcode.CONT, b"men", fin=False))
             + client.frame_bytes(Frame(Opcode.CONT, b"ted", fin=True)))
    client.send(parts + text(client, "next"), cut=5)
    assert client.replies(2) == ["t:fragmented", "t:next"]
    client.send(text(client, "and on"))  # the connection goes on after the fragments
    assert client.replies(3)[2:] == ["t:and on"]


def test_close_frame_is_answered_and_the_app_sees_the_code(server: int) -> None:
    client = RawClient(server)
    client.send(text(client, "hi"))
    assert client.replies(1) == ["t:hi"]
    client.proto.send_close(1000, "bye")
    client._flush()
    assert client.closed_with() == 1000


def test_server_initiated_close(server: int) -> None:
    client = RawClient(server)
    client.send(text(client, "close please"))
    assert client.closed_with() == 4000


@pytest.mark.parametrize(("frame", "code"), [
    (lambda c: unmasked(0x1, b"no mask"), 1002),  # a client frame must be masked
    (lambda c: c.frame_bytes(Frame(Opcode.TEXT, b"\xff\xfe bad utf-8")), 1007),
    (lambda c: c.frame_bytes(Frame(Opcode.BINARY, b"\0" * (MAX_SIZE + 1))), 1009),
    (lambda c: c.frame_bytes(Frame(Opcode.CONT, b"nothing to continue")), 1002),
    (lambda c: masked(0x80 | 0x20 | 0x1, b"rsv"), 1002),  # RSV2 set, no extension agreed
    (lambda c: masked(0x83, b""), 1002),  # a reserved data opcode
    (lambda c: masked(0x8B, b""), 1002),  # a reserved control opcode
    (lambda c: masked(0x09, b"ping"), 1002),  # a fragmented control frame
    (lambda c: masked(0x89, b"p" * 126), 1002),  # a control frame over 125 bytes
], ids=["unmasked", "invalid-utf8", "too-big", "stray-continuation", "rsv-bit", "reserved-opcode",
        "reserved-control", "fragmented-ping", "long-ping"])
def test_bad_frames_close_the_socket_as_the_stock_parser_decides(server: int, frame: Any, code: int) -> None:
    client = RawClient(server)
    client.send(text(client, "fine"))
    assert client.replies(1) == ["t:fine"]
    client.send(frame(client) + text(client, "never echoed"))
    assert client.closed_with() == code
    client._collect()
    assert client.texts() == ["t:fine"]


def test_data_frames_bypass_the_stock_parser(monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest,
                                             server: int) -> None:
    """The point of the media protocol: whole data frames never reach websockets' parser."""
    from websockets.server import ServerProtocol

    fed: list[int] = []
    original = ServerProtocol.receive_data

    def counted(self: ServerProtocol, data: bytes) -> None:
        fed.append(len(data))
        original(self, data)

    monkeypatch.setattr(ServerProtocol, "receive_data", counted)
    client = RawClient(server)
    handshake = len(fed)
    client.send(b"".join(text(client, f"m{i}") for i in range(20)), cut=7)
    assert client.replies(20) == [f"t:m{i}" for i in range(20)]
    after = fed[handshake:]
    if "media" in request.node.callspec.id:
        assert after == []
    else:
        assert sum(after) == sum(len(text(client, f"m{i}")) for i in range(20))


class _Stalled:
    """An echo app that does not read until `go` is set: what the reading side does meanwhile."""

    def __init__(self) -> None:
        self.go = threading.Event()

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            return await echo_app(scope, receive, send)
        await receive()
        await send({"type": "websocket.accept"})
        while not self.go.is_set():
            await asyncio.sleep(0.01)
        while (message := await receive())["type"] != "websocket.disconnect":
            await send({"type": "websocket.send", "text": f"t:{message['text']}"})


@pytest.mark.parametrize("kind", sorted(PROTOCOLS))
def test_reading_pauses_for_an_app_that_falls_behind_not_at_every_message(kind: str) -> None:
    """The stock protocol pauses the socket at every message until the app takes it (two watcher
    changes per 20 ms frame); ours from PAUSE_AT waiting messages. Both push back on a sender whose
    app stopped reading, and resume once it has caught up; nothing is lost or reordered."""
    from sutradhar.server.websocket_protocol import PAUSE_AT

    app = _Stalled()
    with serving(app, kind) as srv:
        client = RawClient(srv.config.port)
        (conn,) = srv.server_state.connections

        def send_each(start: int, count: int) -> None:
            for i in range(start, start + count):
                client.send(text(client, f"m{i}"))
                time.sleep(0.005)  # a read of its own, as a call's frames arrive
            time.sleep(0.1)

        send_each(0, PAUSE_AT - 4)
        if kind == "stock":  # paused at the first message: the rest wait in the kernel
            assert conn.read_paused and conn.queue.qsize() == 1
        else:
            assert not conn.read_paused and conn.queue.qsize() == PAUSE_AT - 4
        send_each(PAUSE_AT - 4, 8)
        assert conn.read_paused  # the app is PAUSE_AT messages behind: the sender waits
        assert conn.queue.qsize() == (1 if kind == "stock" else PAUSE_AT)
        app.go.set()
        total = PAUSE_AT + 4
        assert client.replies(total) == [f"t:m{i}" for i in range(total)]
        assert not conn.read_paused


class _SinkApp:
    """Takes "s..." messages in a sink while it waits, has the sink hand "q..." ones back to be
    queued, and after each queued one it receives stays busy for a while: messages that arrive
    then must queue behind it, not go to the sink."""

    def __init__(self) -> None:
        self.order: list[str] = []  # every message, as the app saw it (sink or receive)
        self.sunk = 0
        self.extension: Any = "unset"

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            return await echo_app(scope, receive, send)
        await receive()
        await send({"type": "websocket.accept"})
        protocol = self.extension = scope["extensions"].get(MEDIA_SINK)

        def sink(message: dict[str, Any]) -> dict[str, Any] | None:
            if message["text"].startswith("q"):
                return message
            self.sunk += 1
            self.order.append(message["text"])
            return None

        if protocol is not None:
            protocol.set_sink(sink)
        while (message := await receive())["type"] != "websocket.disconnect":
            self.order.append(message["text"])
            await send({"type": "websocket.send", "text": f"t:{message['text']}"})
            if message["text"].startswith("q"):
                await asyncio.sleep(0.2)  # busy: what comes now must wait its turn in the queue


@pytest.mark.parametrize("kind", sorted(PROTOCOLS))
def test_a_media_sink_takes_messages_only_while_the_app_waits_and_order_holds(kind: str) -> None:
    app = _SinkApp()
    with serving(app, kind) as srv:
        client = RawClient(srv.config.port)
        time.sleep(0.1)  # the app sets its sink after the accept the handshake waited for
        # (message, pause after it): s3-s5 and s7 arrive while the app is busy with q2 / q6
        plan = [("s0", 0.05), ("s1", 0.05), ("q2", 0.02), ("s3", 0.02), ("s4", 0.02), ("s5", 0.4),
                ("q6", 0.02), ("s7", 0.4), ("s8", 0.05)]
        for value, pause in plan:
            client.send(text(client, value))
            time.sleep(pause)
        sent = [value for value, _ in plan]
        queued = [value for value in sent if kind == "stock" or value in ("q2", "s3", "s4", "s5", "q6", "s7")]
        assert client.replies(len(queued)) == [f"t:{value}" for value in queued]
        assert app.order == sent  # sink or queue, the app saw every message once, in order
        if kind == "media":
            assert app.extension is not None
            assert app.sunk == 3, app.order  # s0, s1 and s8 found the app waiting with nothing queued
        else:
            assert app.extension is None and app.sunk == 0


class _DirectApp:
    """On "go", sends text and binary messages of each header size, every one through the
    protocol's direct write where there is one (else through ASGI), then one more with the write
    buffer reported full (the direct write must decline it), then closes."""

    MESSAGES: list[str | bytes] = ["short", "x" * 200, "y" * 70_000, b"\x01\x02", bytes(300), bytes(66_000)]

    def __init__(self) -> None:
        self.direct: list[bool] = []  # per message: did the direct write take it

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            return await echo_app(scope, receive, send)
        await receive()
        await send({"type": "websocket.accept"})
        protocol = scope["extensions"].get(MEDIA_SINK)
        assert (await receive())["text"] == "go"
        for message in self.MESSAGES:
            taken = protocol is not None and protocol.send_now(message)
            self.direct.append(taken)
            if not taken:
                key = "text" if isinstance(message, str) else "bytes"
                await send({"type": "websocket.send", key: message})
        if protocol is not None:
            protocol.pause_writing()  # what the transport calls above its high-water mark
            self.direct.append(protocol.send_now("while full"))
            protocol.resume_writing()
        await send({"type": "websocket.send", "text": "while full"})
        await send({"type": "websocket.close", "code": 4001})
        self.direct.append(protocol is not None and protocol.send_now("after close"))


@pytest.mark.parametrize("kind", sorted(PROTOCOLS))
def test_direct_writes_put_the_same_frames_on_the_wire_as_the_stock_send(kind: str) -> None:
    app = _DirectApp()
    with serving(app, kind) as srv:
        client = RawClient(srv.config.port)
        client.send(text(client, "go"))
        assert client.closed_with() == 4001
        client._collect()
    frames = [(f.opcode, f.fin, f.data) for f in client.frames if f.opcode in (Opcode.TEXT, Opcode.BINARY)]
    expected = [(Opcode.TEXT if isinstance(m, str) else Opcode.BINARY, True, m.encode() if isinstance(m, str) else m)
                for m in [*_DirectApp.MESSAGES, "while full"]]
    assert frames == expected
    if kind == "media":
        assert app.direct == [True] * len(_DirectApp.MESSAGES) + [False, False]
    else:
        assert not any(app.direct)


class _LateApp:
    """Does not receive for a while; then takes what queued meanwhile out in one go, and echoes
    what comes after it through receive() as usual."""

    def __init__(self) -> None:
        self.taken: list[str] = []

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            return await echo_app(scope, receive, send)
        await receive()
        await send({"type": "websocket.accept"})
        await asyncio.sleep(0.3)
        self.taken = [m["text"] for m in scope["extensions"][MEDIA_SINK].take_queued()]
        message = await receive()
        await send({"type": "websocket.send", "text": f"t:{message['text']}"})
        await send({"type": "websocket.close", "code": 1000})


def test_take_queued_empties_the_queue_in_order_and_reading_goes_on() -> None:
    app = _LateApp()
    with serving(app, "media") as srv:
        client = RawClient(srv.config.port)
        client.send(b"".join(text(client, f"m{i}") for i in range(PAUSE_AT + 4)))  # enough to pause reading
        time.sleep(0.5)
        client.send(text(client, "after"))
        assert client.replies(1) == ["t:after"]
    assert app.taken == [f"m{i}" for i in range(PAUSE_AT + 4)]
