"""A network namespace with nothing in it but loopback, for the servers the tests start that cannot be told to
listen on 127.0.0.1 alone: Orthanc 1.10 listens on every interface, and Ray binds its GCS and raylet to every
interface and refuses 127.0.0.1 as a node address. Inside the namespace "every interface" is loopback, so
nothing they open is reachable from the machine's network.

Processes join the namespace with ``nsenter`` (:meth:`LoopbackNamespace.command`); a port inside is reached
from the tests' own loopback through :meth:`LoopbackNamespace.forward`, a small forwarder that accepts on a
127.0.0.1 socket of the outer namespace and connects inside. Making a namespace needs root (CI runs as root).

Run as a script, this file is that forwarder: ``loopback.py FD PORT`` serves the inherited listening socket
FD, connecting each client to 127.0.0.1:PORT of the namespace it runs in.
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
from pathlib import Path


class LoopbackNamespace:
    """A network namespace whose only interface is loopback, held open by a sleeping process until closed."""

    def __init__(self) -> None:
        # unshare and sh exec in place, so the holder's pid is the namespace's for as long as it sleeps.
        script = "ip link set lo up && echo up && exec sleep infinity"
        self._holder = subprocess.Popen(
            ["unshare", "--net", "sh", "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        if self._holder.stdout.readline() != "up\n":
            self._holder.wait(timeout=10)
            raise RuntimeError(
                f"No network namespace could be made (the tests that start Ray and Orthanc need root): "
                f"{self._holder.stderr.read().strip()}"
            )
        self._forwarders: list[subprocess.Popen] = []

    @property
    def path(self) -> str:
        return f"/proc/{self._holder.pid}/ns/net"

    def command(self, argv: list[str]) -> list[str]:
        """``argv`` run inside the namespace (nsenter execs it: the process keeps the pid it is started with)."""
        return ["nsenter", f"--net={self.path}", "--", *map(str, argv)]

    def holds(self, pid: int) -> bool:
        """Whether the process ``pid`` runs inside this namespace."""
        return os.readlink(f"/proc/{pid}/ns/net") == os.readlink(self.path)

    def forward(self, port: int) -> int:
        """A port on the outer 127.0.0.1 whose connections reach 127.0.0.1:``port`` inside; the outer port."""
        listener = socket.create_server(("127.0.0.1", 0))
        forwarder = [sys.executable, str(Path(__file__).resolve()), str(listener.fileno()), str(port)]
        self._forwarders.append(subprocess.Popen(self.command(forwarder), pass_fds=[listener.fileno()]))
        outer = listener.getsockname()[1]
        listener.close()  # the forwarder holds its own copy
        return outer

    def close(self) -> None:
        for process in [*self._forwarders, self._holder]:
            process.kill()
            process.wait()

    def __enter__(self) -> LoopbackNamespace:
        return self

    def __exit__(self, *_) -> None:
        self.close()


async def _serve(listening_fd: int, port: int) -> None:
    async def pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(1 << 16):
                writer.write(data)
                await writer.drain()
            writer.write_eof()
        except OSError:
            writer.close()

    async def connect(client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        try:
            server_reader, server_writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:  # nothing listens inside yet: the client sees its connection closed
            client_writer.close()
            return
        await asyncio.gather(pump(client_reader, server_writer), pump(server_reader, client_writer))
        client_writer.close()
        server_writer.close()

    server = await asyncio.start_server(connect, sock=socket.socket(fileno=listening_fd))
    await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(_serve(int(sys.argv[1]), int(sys.argv[2])))
