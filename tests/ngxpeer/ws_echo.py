"""A websocket server for tests/lua/ngx/websocket.lua (Debian's python3-websockets).

Echoes every message with its type; `frag:A,B,C` is answered with one text
message in three frames (A, B, C); `close` with a close frame (1000, "bye").
Prints `WS_PORT <port>` then `ready`, and serves until stdin closes.
"""
import asyncio
import sys

import websockets


async def handler(ws, path=None):
    async for msg in ws:
        if isinstance(msg, str) and msg.startswith("frag:"):
            await ws.send(iter(msg[5:].split(",")))
        elif msg == "close":
            await ws.close(1000, "bye")
        else:
            await ws.send(msg)


async def main():
    async with websockets.serve(handler, "127.0.0.1", 0) as server:
        port = server.sockets[0].getsockname()[1]
        print(f"WS_PORT {port}", flush=True)
        print("ready", flush=True)
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, sys.stdin.read)


asyncio.run(main())
