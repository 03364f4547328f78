"""``aiadmin serve`` as operators run it: a real process that stops cleanly on SIGINT/SIGTERM."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
import trio

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
async def test_serve_stops_cleanly_on_a_signal(tmp_path: Path, signum: signal.Signals) -> None:
    port = free_port()
    env = {
        "PATH": os.environ.get("PATH", ""),
        "PORT": str(port),
        "ADMIN_API_KEY": "adm_signal_test_key_0123456789",
        "PYTHONPATH": str(ROOT),
    }
    process = await trio.lowlevel.open_process(
        [sys.executable, "-m", "web.cli", "serve", "--demo"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    output = bytearray()

    async def read_output() -> None:
        assert process.stdout is not None
        async for chunk in process.stdout:
            output.extend(chunk)

    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(read_output)
            async with httpx.AsyncClient() as client:
                with trio.fail_after(30):
                    while True:
                        try:
                            health = await client.get(f"http://127.0.0.1:{port}/health")
                            break
                        except httpx.TransportError:
                            await trio.sleep(0.1)
            assert health.json()["status"] == "ok"
            process.send_signal(signum)
            with trio.fail_after(15):
                code = await process.wait()
    finally:
        if process.returncode is None:
            process.kill()
    text = output.decode(errors="replace")
    assert code == 0, text
    assert "demo salon connect page" in text
    assert "shutting down" in text
    assert "stopped" in text
    assert "Traceback" not in text
