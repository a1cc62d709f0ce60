"""A websocket server for tests/lua/ngx/websocket.lua (Debian's python3-websockets):
ws:// and, with a certificate and key as arguments, wss:// on another port.

Echoes every message with its type; `frag:A,B,C` is answered with one text
message in three frames (A, B, C); `close` with a close frame (1000, "bye").
Prints `WS_PORT <port>` (and `WSS_PORT <port>`) then `ready`, and serves until
stdin closes.
"""
import asyncio
import ssl
import sys

import websockets


async def handler(ws, path=None):
    # lua-resty-websocket's close() sends a close frame without a status
    # code (1005), which websockets reports as an error: not one here.
    try:
        async for msg in ws:
            if isinstance(msg, str) and msg.startswith("frag:"):
                await ws.send(iter(msg[5:].split(",")))
            elif msg == "close":
                await ws.close(1000, "bye")
            else:
                await ws.send(msg)
    except websockets.ConnectionClosed:
        pass


async def main():
    async with websockets.serve(handler, "127.0.0.1", 0) as server:
        print(f"WS_PORT {server.sockets[0].getsockname()[1]}", flush=True)
        tls = None
        if len(sys.argv) == 3:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(sys.argv[1], sys.argv[2])
            tls = await websockets.serve(handler, "127.0.0.1", 0, ssl=ctx)
            print(f"WSS_PORT {tls.sockets[0].getsockname()[1]}", flush=True)
        print("ready", flush=True)
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, sys.stdin.read)
        if tls:
            tls.close()


asyncio.run(main())
