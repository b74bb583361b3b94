"""bench/anchor-py-echo.py - workload E's Python anchors: the echo server of
the asyncio documentation (asyncio.start_server, StreamReader.read,
StreamWriter.write + drain), on asyncio's own loop or on uvloop.

    anchor-py-echo.py asyncio|uvloop

Listens on 127.0.0.1 at an ephemeral port, prints "PORT <n>" and serves
until killed.  Runs on Debian's /usr/bin/python3 (python3-uvloop).
"""
import asyncio
import resource
import sys


async def handle(reader, writer):
    try:
        while True:
            data = await reader.read(4096)
            if not data:
                break
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        writer.close()


async def main():
    server = await asyncio.start_server(handle, "127.0.0.1", 0, backlog=4096)
    port = server.sockets[0].getsockname()[1]
    print("PORT %d" % port, flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    kind = sys.argv[1] if len(sys.argv) > 1 else "asyncio"
    if kind == "uvloop":
        import uvloop
        uvloop.install()
    elif kind != "asyncio":
        sys.exit("usage: anchor-py-echo.py asyncio|uvloop")
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass
