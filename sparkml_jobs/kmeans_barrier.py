"""k-means in Spark's barrier execution mode: all Lloyd iterations inside one stage.

The cached point blocks are spread over as many partitions as there are task slots (one
shuffle when there are more partitions than slots — barrier stages refuse ``coalesce``);
each barrier task reads its partition once and keeps it in memory, then every
iteration computes its :class:`~sparkml_jobs.kmeans_kernels.ClusterPartial`, exchanges it with all
the other tasks through ``BarrierTaskContext.allGather`` (a few kB each), merges the partials in
partition order and advances the same :class:`~sparkml_jobs.kmeans_kernels.LloydState` — so every
task holds identical centres without a driver round trip, a broadcast or a job per iteration.
The JVM→Python transfer of the data, the dominant per-iteration cost of the broadcast mode,
happens once. If a task fails, Spark restarts the whole stage, which recomputes the same result.
"""

from __future__ import annotations

import os
from functools import reduce

import numpy as np

from sparkml_jobs import kmeans_kernels as kk
from sparkml_jobs.errors import InputError


def encode_partial(index: int, partial: kk.ClusterPartial) -> bytes:
    """A partial as bytes: float64 header + arrays (no pickle)."""
    k, d = partial.sums.shape
    m = len(partial.far_d2)
    flat = np.concatenate(
        [
            [index, k, d, m, partial.cost],
            partial.sums.ravel(),
            partial.weights,
            partial.counts.astype(np.float64),
            partial.far_d2,
            partial.far_points.ravel(),
        ]
    )
    return flat.astype(np.float64).tobytes()


def decode_partial(payload: bytes) -> tuple[int, kk.ClusterPartial]:
    flat = np.frombuffer(payload, dtype=np.float64)
    index, k, d, m = (int(v) for v in flat[:4])
    cost = float(flat[4])
    at = 5
    sums = flat[at : at + k * d].reshape(k, d)
    at += k * d
    weights, counts = flat[at : at + k], flat[at + k : at + 2 * k].astype(np.int64)
    at += 2 * k
    far_d2, far_points = flat[at : at + m], flat[at + m : at + m + m * d].reshape(m, d)
    return index, kk.ClusterPartial(
        sums.copy(), weights.copy(), counts, cost, far_d2.copy(), far_points.copy()
    )


class Exchange:
    """All-gather of byte strings between the tasks of one barrier stage, over TCP.

    ``BarrierTaskContext.allGather`` costs about a second per call here (its coordinator polls),
    so it is used once, to publish the port task 0 listens on; then every round is a direct
    exchange through task 0 (milliseconds). Connections carry a per-job random token; the server
    binds to task 0's executor address only.
    """

    def __init__(self, context, index: int, n_tasks: int, token: bytes):
        import socket

        self.index, self.n_tasks, self.token = index, n_tasks, token
        self.peers: dict[int, socket.socket] = {}
        host = context.getTaskInfos()[0].address.rsplit(":", 1)[0]
        server = None
        if index == 0 and n_tasks > 1:
            server = socket.create_server((host, 0))
            server.settimeout(600)
        port = server.getsockname()[1] if server else 0
        published = context.allGather(f"{index}:{port}")
        hub_port = next(int(m.split(":")[1]) for m in published if m.startswith("0:"))
        if index == 0 and server is not None:
            while len(self.peers) < n_tasks - 1:
                conn, _ = server.accept()
                hello = _recv(conn)
                if hello[:-4] != token:
                    conn.close()
                    continue
                self.peers[int.from_bytes(hello[-4:], "big")] = conn
            server.close()
        elif index != 0:
            self.hub = socket.create_connection((host, hub_port), timeout=600)
            _send(self.hub, token + index.to_bytes(4, "big"))

    def all_gather(self, payload: bytes) -> list[bytes]:
        """Every task's payload, ordered by task index."""
        if self.n_tasks == 1:
            return [payload]
        if self.index == 0:
            parts = [payload] + [_recv(self.peers[i]) for i in range(1, self.n_tasks)]
            bundle = b"".join(len(p).to_bytes(8, "big") + p for p in parts)
            for i in range(1, self.n_tasks):
                _send(self.peers[i], bundle)
            return parts
        _send(self.hub, payload)
        bundle, parts, at = _recv(self.hub), [], 0
        while at < len(bundle):
            size = int.from_bytes(bundle[at : at + 8], "big")
            parts.append(bundle[at + 8 : at + 8 + size])
            at += 8 + size
        return parts

    def close(self) -> None:
        for conn in [*self.peers.values(), getattr(self, "hub", None)]:
            if conn is not None:
                conn.close()


def _send(conn, payload: bytes) -> None:
    conn.sendall(len(payload).to_bytes(8, "big") + payload)


def _recv(conn) -> bytes:
    def exactly(size: int) -> bytes:
        chunks, left = [], size
        while left:
            chunk = conn.recv(min(left, 1 << 20))
            if not chunk:
                raise ConnectionError("barrier peer closed the connection")
            chunks.append(chunk)
            left -= len(chunk)
        return b"".join(chunks)

    return exactly(int.from_bytes(exactly(8), "big"))


def task_slots(sc) -> int:
    """Concurrent task slots the barrier stage may use (all its tasks must run at once)."""
    return max(1, int(sc.defaultParallelism))


def run_barrier(
    points, state: kk.LloydState, k: int, chunk_rows: int, stride: int
) -> kk.ClusterPartial:
    """Run every remaining iteration of ``state`` in one barrier stage; returns the final partial
    (assignment to the final centres, with the plot sample) and updates ``state`` in place."""
    sc = points.context
    slots = task_slots(sc)
    # barrier stages refuse coalesce(); more partitions than slots need one shuffle (done once)
    rdd = points if points.getNumPartitions() <= slots else points.repartition(slots)
    start = kk.LloydState(
        centers=state.centers, max_iter=state.max_iter, tol=state.tol, cosine=state.cosine
    )
    n_tasks = rdd.getNumPartitions()
    token = os.urandom(16)

    def run(index, items):
        from pyspark import BarrierTaskContext

        context = BarrierTaskContext.get()
        channel = Exchange(context, index, n_tasks, token)
        resident = [(np.ascontiguousarray(x), w) for x, w, *_ in items]
        lloyd = kk.LloydState(
            centers=start.centers.copy(),
            max_iter=start.max_iter,
            tol=start.tol,
            cosine=start.cosine,
        )
        d = lloyd.centers.shape[1]

        def exchange(sample_stride: int = 0) -> tuple[kk.ClusterPartial, kk.ClusterPartial]:
            """(this task's partial, the merged partial of all tasks, in partition order)."""
            mine = reduce(
                kk.ClusterPartial.merge,
                (
                    kk.lloyd_partial(
                        x,
                        lloyd.centers,
                        w,
                        keep_far=k,
                        chunk_rows=chunk_rows,
                        sample_stride=sample_stride,
                    )
                    for x, w in resident
                ),
                kk.ClusterPartial.zero(k, d),
            )
            messages = channel.all_gather(encode_partial(index, mine))
            gathered = [decode_partial(m)[1] for m in messages]  # in task order
            return mine, reduce(kk.ClusterPartial.merge, gathered)

        while not lloyd.done:
            lloyd.advance(exchange()[1])
        mine, final = exchange(stride)  # the plot sample stays per task; sizes and cost are global
        channel.close()
        yield (
            index,
            lloyd.centers,
            lloyd.history,
            lloyd.reseeded,
            lloyd.converged,
            final,
            (mine.sample_points, mine.sample_labels),
        )

    try:
        results = sorted(rdd.barrier().mapPartitionsWithIndex(run).collect(), key=lambda r: r[0])
    except Exception as exc:
        if "barrier" in str(exc).lower() and "slots" in str(exc).lower():
            raise InputError(
                f"barrier mode needs {rdd.getNumPartitions()} free task slots: {exc}"
            ) from exc
        raise
    _, centers, history, reseeded, converged, final, _ = results[0]
    state.centers, state.history, state.reseeded = centers, history, reseeded
    state.converged, state.n_iter = converged, len(history)
    samples = [r[6] for r in results if r[6][0] is not None]
    sample_points = np.vstack([s[0] for s in samples]) if samples else None
    sample_labels = np.concatenate([s[1] for s in samples]) if samples else None
    return kk.ClusterPartial(
        final.sums,
        final.weights,
        final.counts,
        final.cost,
        final.far_d2,
        final.far_points,
        sample_points,
        sample_labels,
    )
