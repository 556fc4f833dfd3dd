"""All-gather of byte strings between the tasks of one barrier stage (the all-reduce pattern).

``BarrierTaskContext.allGather`` costs about a second per call here (its coordinator polls), so it
is used once, to publish the port task 0 listens on; every round after that is a direct exchange
through task 0 over loopback or the cluster network (milliseconds). Connections are the standard
library's authenticated ones (``multiprocessing.connection``: HMAC challenge with a per-job random
key), task 0 binds to its own executor address only, and every socket is closed on every path,
including failures and timeouts.
"""

from __future__ import annotations

import socket
from multiprocessing.connection import Client, Connection, answer_challenge, deliver_challenge

# How long a task waits for its peers in one round; a failed peer normally ends the stage much
# sooner (Spark kills every task of a barrier stage when one fails).
ROUND_TIMEOUT_S = 1800.0


class AllGather:
    """One barrier stage's exchange; use as a context manager so it is always closed.

    Parameters
    ----------
    context : BarrierTaskContext
        The running task's context (its ``allGather`` publishes the hub's port once).
    index, n_tasks : int
        This task's partition index and the number of tasks in the stage.
    authkey : bytes
        Shared secret of this stage (random per job, shipped in the task closure).
    """

    def __init__(
        self, context, index: int, n_tasks: int, authkey: bytes, timeout: float = ROUND_TIMEOUT_S
    ):
        self.index, self.n_tasks, self.timeout = index, n_tasks, timeout
        self.peers: dict[int, Connection] = {}
        self.hub: Connection | None = None
        host = context.getTaskInfos()[0].address.rsplit(":", 1)[0]
        server = None
        try:
            if index == 0 and n_tasks > 1:
                server = socket.create_server((host, 0))
                server.settimeout(timeout)
            port = server.getsockname()[1] if server else 0
            published = context.allGather(f"{index}:{port}")
            hub_port = next(int(m.split(":")[1]) for m in published if m.startswith("0:"))
            if server is not None:
                self._accept_peers(server, authkey)
            elif index != 0:
                self.hub = Client((host, hub_port), authkey=authkey)
                self.hub.send_bytes(index.to_bytes(4, "big"))
        except BaseException:
            self.close()
            raise
        finally:
            if server is not None:
                server.close()

    def _accept_peers(self, server: socket.socket, authkey: bytes) -> None:
        while len(self.peers) < self.n_tasks - 1:
            sock, _ = server.accept()
            sock.settimeout(None)
            conn = Connection(sock.detach())
            try:
                deliver_challenge(conn, authkey)
                answer_challenge(conn, authkey)
                peer = int.from_bytes(self._receive(conn), "big")
            except Exception:  # a stranger or a broken peer: drop it, keep listening
                conn.close()
                continue
            self.peers[peer] = conn

    def _receive(self, conn: Connection) -> bytes:
        if not conn.poll(self.timeout):
            raise TimeoutError(f"barrier peer sent nothing in {self.timeout:.0f} s")
        return conn.recv_bytes()

    def all_gather(self, payload: bytes) -> list[bytes]:
        """Every task's payload, ordered by task index."""
        if self.n_tasks == 1:
            return [payload]
        if self.index == 0:
            parts = [payload] + [self._receive(self.peers[i]) for i in range(1, self.n_tasks)]
            bundle = b"".join(len(p).to_bytes(8, "big") + p for p in parts)
            for i in range(1, self.n_tasks):
                self.peers[i].send_bytes(bundle)
            return parts
        assert self.hub is not None
        self.hub.send_bytes(payload)
        return split_bundle(self._receive(self.hub))

    def close(self) -> None:
        for conn in [*self.peers.values(), self.hub]:
            if conn is not None:
                conn.close()
        self.peers, self.hub = {}, None

    def __enter__(self) -> AllGather:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


def split_bundle(bundle: bytes) -> list[bytes]:
    """Inverse of the hub's framing: 8-byte big-endian length, then the bytes, repeated."""
    parts, at = [], 0
    while at < len(bundle):
        size = int.from_bytes(bundle[at : at + 8], "big")
        parts.append(bundle[at + 8 : at + 8 + size])
        at += 8 + size
    return parts
