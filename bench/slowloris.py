"""Slow-header clients against the real service: N connections each dribble a request head that never ends
(a byte a second), while a probe asks GET /health every half second. Prints the probe's latencies and how many
slow connections the server cut off, for the service as it runs (`sentiment serve`) and, with --plain, for
uvicorn's own protocol without the service's header deadline and connection cap.

    .venv/bin/python bench/slowloris.py --connections 420 --seconds 30 [--plain]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

PLAIN = (
    "import uvicorn; from sentiment.app import create_app; from sentiment.settings import Settings; "
    "uvicorn.run(create_app(Settings.from_env()), host='127.0.0.1', port={port}, log_config=None, "
    "access_log=False)"
)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


async def dribble(port: int, stop: float, cut: list[float]) -> None:
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
    except OSError:
        cut.append(0.0)
        return
    opened = time.monotonic()
    head = b"GET /health HTTP/1.1\r\nhost: x\r\nx-slow: " + b"a" * 10_000
    for byte in head:
        if time.monotonic() > stop or reader.at_eof():
            break
        try:
            writer.write(bytes([byte]))
            await writer.drain()
        except OSError:
            break
        try:
            await asyncio.wait_for(reader.read(1000), 1.0)
            break  # an answer (408 or 503): the server let go of this connection
        except TimeoutError:
            continue
    if time.monotonic() < stop:
        cut.append(time.monotonic() - opened)
    writer.close()


async def probe(base_url: str, stop: float) -> list[float]:
    latencies = []
    async with httpx.AsyncClient(timeout=30) as client:
        while time.monotonic() < stop:
            started = time.monotonic()
            await client.get(f"{base_url}/health", headers={"connection": "close"})
            latencies.append((time.monotonic() - started) * 1000)
            await asyncio.sleep(0.5)
    return latencies


async def run(port: int, connections: int, seconds: float) -> None:
    stop = time.monotonic() + seconds
    cut: list[float] = []
    slow = [asyncio.create_task(dribble(port, stop, cut)) for _ in range(connections)]
    await asyncio.sleep(1)
    latencies = await probe(f"http://127.0.0.1:{port}", stop)
    await asyncio.gather(*slow)
    print(
        f"probe /health: {len(latencies)} requests, p50 {statistics.median(latencies):.1f} ms, "
        f"max {max(latencies):.1f} ms; slow connections cut off by the server: {len(cut)} of {connections}"
        + (f" (after {statistics.median(cut):.1f} s median)" if cut else "")
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--connections", type=int, default=420)
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--plain", action="store_true", help="uvicorn's own protocol, no deadline or cap")
    args = parser.parse_args()
    port = free_port()
    with tempfile.TemporaryDirectory() as folder:
        database = f"sqlite+aiosqlite:///{Path(folder) / 'bench.db'}"
        env = {**os.environ, "PORT": str(port), "DATABASE_URL": database}
        command = (
            [sys.executable, "-c", PLAIN.format(port=port)]
            if args.plain
            else [sys.executable, "-m", "sentiment", "serve"]
        )
        server = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            for _ in range(600):
                try:
                    httpx.get(f"http://127.0.0.1:{port}/health", timeout=1)
                    break
                except httpx.TransportError:
                    time.sleep(0.1)
            print("uvicorn's own protocol" if args.plain else "sentiment serve", end=": ")
            asyncio.run(run(port, args.connections, args.seconds))
        finally:
            server.terminate()
            server.wait(30)


if __name__ == "__main__":
    main()
