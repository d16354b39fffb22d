"""Throughput through the engine and the real openai SDK, against the raw SDK alone.

A minimal asyncio HTTP/1.1 server on 127.0.0.1 answers every chat-completions
request with the same valid JSON (in its own process, so it doesn't share the
client's event loop).  Both sides send the same requests at concurrency 64,
alternating rounds so machine noise hits both; the figures are the ratio of
medians and the median of per-round ratios.  Goal: engine >= 0.9x raw SDK.  Run: ``python benchmarks/throughput.py``.
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import socket
import statistics
import time

from openai import AsyncOpenAI

from cascade import Cascade, InMemoryLedger, JsonContract, Tier

CONCURRENCY = 64
REQUESTS = 1000
ROUNDS = 5
BODY = json.dumps({
    "id": "chatcmpl-1", "object": "chat.completion", "created": 1700000000, "model": "served",
    "choices": [{"index": 0, "finish_reason": "stop",
                 "message": {"role": "assistant", "content": '{"city": "Oslo"}'}}],
    "usage": {"prompt_tokens": 12, "completion_tokens": 6, "total_tokens": 18},
}).encode()  # fmt: skip
RESPONSE = (
    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "
    + str(len(BODY)).encode()
    + b"\r\n\r\n"
    + BODY
)


async def _serve_connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":", 1)[1])
            await reader.readexactly(length)
            writer.write(RESPONSE)
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        writer.close()


def _server_process(sock: socket.socket) -> None:
    async def serve() -> None:
        server = await asyncio.start_server(_serve_connection, sock=sock, backlog=1024)
        await server.serve_forever()

    asyncio.run(serve())


async def raw_sdk(base_url: str) -> float:
    client = AsyncOpenAI(base_url=base_url, api_key="loopback", max_retries=0)
    limiter = asyncio.Semaphore(CONCURRENCY)

    async def one(i: int) -> None:
        async with limiter:
            reply = await client.chat.completions.create(
                model="served", messages=[{"role": "user", "content": f"Where is item {i}?"}], max_tokens=50
            )
            json.loads(reply.choices[0].message.content or "")

    t0 = time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(REQUESTS)))
    elapsed = time.perf_counter() - t0
    await client.close()
    return REQUESTS / elapsed


async def through_engine(base_url: str) -> float:
    tier = Tier("local", "openai", "served", 0.0, 0.0, base_url=base_url, profile="prompt", max_tokens=50)
    contract = JsonContract({"type": "object", "required": ["city"]}, name="city")
    async with Cascade([tier], ledger=InMemoryLedger()) as engine:
        t0 = time.perf_counter()
        jobs = [(f"Where is item {i}?", contract) for i in range(REQUESTS)]
        results = await engine.amap(jobs, concurrency=CONCURRENCY)
        elapsed = time.perf_counter() - t0
    assert all(getattr(r, "accepted", False) for r in results), "every answer should pass"
    return REQUESTS / elapsed


def main() -> None:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(1024)
    base_url = f"http://127.0.0.1:{sock.getsockname()[1]}/v1"
    server = multiprocessing.get_context("fork").Process(target=_server_process, args=(sock,), daemon=True)
    server.start()
    try:
        asyncio.run(raw_sdk(base_url))  # warm-up
        raw, engine = [], []
        for _ in range(ROUNDS):
            raw.append(asyncio.run(raw_sdk(base_url)))
            engine.append(asyncio.run(through_engine(base_url)))
    finally:
        server.terminate()
        server.join()
    raw_med, engine_med = statistics.median(raw), statistics.median(engine)
    paired = statistics.median(e / r for e, r in zip(engine, raw, strict=True))
    print(
        f"{REQUESTS} requests x {ROUNDS} rounds at concurrency {CONCURRENCY}, loopback server in its own process"
    )
    print(f"raw openai SDK:          {raw_med:8.0f} req/s  (rounds: {', '.join(f'{r:.0f}' for r in raw)})")
    print(
        f"engine + openai SDK:     {engine_med:8.0f} req/s  (rounds: {', '.join(f'{r:.0f}' for r in engine)})"
    )
    print(f"ratio engine / raw: {engine_med / raw_med:.2f}x of medians, {paired:.2f}x median of paired rounds"
          "  (goal >= 0.9x)")  # fmt: skip


if __name__ == "__main__":
    main()
