"""The barrier exchange's wire format of a :class:`~.kernels.ClusterPartial`: a float64 header
and its arrays as raw bytes (no pickle). No Spark here."""

from __future__ import annotations

import numpy as np

from sparkml_jobs.clustering.kernels import ClusterPartial


def encode_partial(index: int, partial: ClusterPartial) -> bytes:
    """A partial as bytes for the barrier exchange: float64 header + arrays (no pickle).

    The plot sample is not carried: it stays with the task that drew it.
    """
    k, d = partial.sums.shape
    m = len(partial.far_d2)
    flat = np.concatenate(
        [
            [index, k, d, m, partial.keep, partial.cost],
            partial.sums.ravel(),
            partial.weights,
            partial.counts.astype(np.float64),
            partial.far_d2,
            partial.far_points.ravel(),
        ]
    )
    return flat.astype(np.float64).tobytes()


def decode_partial(payload: bytes) -> tuple[int, ClusterPartial]:
    flat = np.frombuffer(payload, dtype=np.float64)
    index, k, d, m, keep = (int(v) for v in flat[:5])
    cost = float(flat[5])
    at = 6
    sums = flat[at : at + k * d].reshape(k, d)
    at += k * d
    weights, counts = flat[at : at + k], flat[at + k : at + 2 * k].astype(np.int64)
    at += 2 * k
    far_d2, far_points = flat[at : at + m], flat[at + m : at + m + m * d].reshape(m, d)
    return index, ClusterPartial(
        sums.copy(), weights.copy(), counts, cost, far_d2.copy(), far_points.copy(), keep=keep
    )
