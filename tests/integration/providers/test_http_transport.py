"""The cloud clients' transport (engines/http_transport.py): httpx's API on aiohttp's pool, with
failures named for what they are."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from sutradhar.engines.base import ProviderError, ProviderTimeout
from sutradhar.engines.http import transport_error
from sutradhar.engines.http_transport import ProviderTransport, env_proxy


async def _server(handle) -> tuple[asyncio.AbstractServer, str]:  # noqa: ANN001
    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    return server, f"http://127.0.0.1:{port}"


def _client(base_url: str, timeout: float = 5.0) -> httpx.AsyncClient:
    limits = httpx.Limits(max_connections=10)
    return httpx.AsyncClient(base_url=base_url, timeout=timeout, limits=limits,
                             transport=ProviderTransport(limits, base_url))


async def test_a_connection_dropped_before_the_answer_is_a_network_error_not_a_timeout() -> None:
    async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.close()

    server, url = await _server(hang_up)
    async with server, _client(url) as client:
        with pytest.raises(httpx.HTTPError) as caught:
            await client.post("/v1/chat/completions", json={})
    assert not isinstance(caught.value, httpx.TimeoutException), repr(caught.value)
    error = transport_error(caught.value, provider="p", stage="llm")
    assert type(error) is ProviderError and error.retryable and "connection failed" in str(error)


async def test_a_stream_cut_mid_body_is_a_read_error_and_a_silent_server_a_timeout() -> None:
    async def cut(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\npartial")
        await writer.drain()
        writer.close()

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        await asyncio.sleep(5)

    server, url = await _server(cut)
    async with server, _client(url) as client:
        async with client.stream("GET", "/audio") as response:
            assert response.status_code == 200
            with pytest.raises(httpx.ReadError):
                async for _ in response.aiter_bytes():
                    pass
    server, url = await _server(silent)
    async with server, _client(url, timeout=0.3) as client:
        with pytest.raises(httpx.TimeoutException) as caught:
            await client.get("/slow")
    assert isinstance(transport_error(caught.value, provider="p", stage="tts"), ProviderTimeout)


async def test_connections_are_reused_across_requests() -> None:
    peers: list[tuple[str, int]] = []

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peers.append(writer.get_extra_info("peername"))
        try:
            while True:
                await reader.readuntil(b"\r\n\r\n")
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    server, url = await _server(answer)
    async with server, _client(url) as client:
        for _ in range(3):
            assert (await client.get("/health")).text == "ok"
    assert len(peers) == 1


def test_the_environment_proxy_is_used_unless_no_proxy_spares_the_host(monkeypatch) -> None:
    for key in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy",
                "NO_PROXY", "no_proxy"):
        monkeypatch.delenv(key, raising=False)
    assert env_proxy("https://api.sarvam.ai") is None
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.internal:3128")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    proxy = env_proxy("https://api.sarvam.ai")
    assert proxy is not None and proxy.url == httpx.URL("http://proxy.internal:3128")
    assert env_proxy("http://127.0.0.1:8766/v1") is None
