"""Pure numpy/scipy: centred statistics of a wide design, accumulated on the packed triangle.

A wide design (thousands of columns) makes the co-moment matrix the dominant object: 8,193
columns is 537 MB as a full matrix, 268 MB as its upper triangle. :class:`PackedStats` keeps only
the triangle — in LAPACK's upper packed order, column ``j`` holding rows ``0 … j`` at offset
``j (j + 1) / 2`` — and adds each block to it in place, so a partition holds one triangle, ships
it once — as records of :data:`PIECE_BYTES` (:meth:`PackedStats.pieces`), which the driver adds
into its running triangle as they arrive (:meth:`PackedStats.absorb_pieces`), so no hop holds a
second whole triangle — and triangles merge with one packed rank-1 update.

Numerics are those of :class:`~.stats.SufficientStats`: every block is centred on its own mean and
merged with the Chan, Golub & LeVeque update. The update's rank-1 term ``f δδᵀ`` is folded into
the block's product as one extra row ``√f δ``, so a block costs one symmetric product and nothing
else. The product is computed a panel of columns at a time (``Z[:, panel]ᵀ Z[:, :end]``): only
the upper triangle plus the panels' diagonal squares — about half the flops of ``ZᵀZ``, like a
``dsyrk`` — and the panel's rows land in the triangle as contiguous slices.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from sparkml_jobs.regression import rfp
from sparkml_jobs.regression.stats import SufficientStats

PANEL = 256  # columns per panel: big enough for BLAS-3 speed, small enough to waste ~3 % flops
PIECE_BYTES = 16 * 2**20  # one record of a shipped triangle


@functools.lru_cache(maxsize=8)
def offsets(m: int) -> np.ndarray:
    """Start of column ``j`` in the packed triangle of an ``m × m`` matrix (computed once a width).

    ``m + 1`` entries; the last is the packed length ``m (m + 1) / 2``.
    """
    j = np.arange(m + 1, dtype=np.int64)
    offs = j * (j + 1) // 2
    offs.flags.writeable = False
    return offs


def pack(full: np.ndarray) -> np.ndarray:
    """Upper triangle of a symmetric matrix, LAPACK packed order (column ``j``: rows ``0 … j``)."""
    m = len(full)
    offs = offsets(m)
    packed = np.empty(offs[-1])
    for j in range(m):  # row j of the lower half = column j of the upper half (symmetric)
        packed[offs[j] : offs[j + 1]] = full[j, : j + 1]
    return packed


def unpack(packed: np.ndarray, m: int) -> np.ndarray:
    """The full symmetric matrix of a packed upper triangle (no index arrays: one slice a row)."""
    offs = offsets(m)
    full = np.empty((m, m))
    for j in range(m):
        column = packed[offs[j] : offs[j + 1]]
        full[j, : j + 1] = column
        full[: j + 1, j] = column
    return full


def slices(values: np.ndarray, piece_bytes: int) -> Iterator[np.ndarray]:
    """Consecutive views of the 1-D ``values``, at most ``piece_bytes`` each (pickling a view
    carries only its own bytes): the records a wide partial travels as."""
    step = max(1, piece_bytes // 8)
    for start in range(0, len(values), step):
        yield values[start : start + step]


def slice_count(length: int, piece_bytes: int) -> int:
    """How many :func:`slices` of ``piece_bytes`` an array of ``length`` numbers makes."""
    return -(-length // max(1, piece_bytes // 8))


def assemble(records: Iterator[np.ndarray], length: int) -> np.ndarray:
    """The array of ``length`` numbers whose :func:`slices` are ``records``, in one buffer."""
    values, start = np.empty(length), 0
    for chunk in records:
        values[start : start + len(chunk)] = chunk
        start += len(chunk)
    return values


@dataclass(frozen=True, kw_only=True)
class PackedStats:
    """:class:`~.stats.SufficientStats` with the co-moment as a packed upper triangle.

    :meth:`absorb` and :meth:`merge` *consume* ``self``: they update ``self.packed`` in place (a
    wide triangle is hundreds of MB; a copy per block would double the memory and the traffic) and
    return the new statistics sharing that buffer. Use the returned value, never ``self`` again.
    """

    n: int
    w_sum: float
    mean: np.ndarray
    packed: np.ndarray

    @classmethod
    def zero(cls, width: int) -> PackedStats:
        return cls(n=0, w_sum=0.0, mean=np.zeros(width), packed=np.zeros(offsets(width)[-1]))

    @property
    def width(self) -> int:
        return len(self.mean)

    def absorb(self, z: np.ndarray, w: np.ndarray | None = None) -> PackedStats:
        """Add a block ``z`` (rows × width), optionally weighted, to the triangle in place."""
        n = len(z)
        if n == 0:
            return self
        w_b = float(n) if w is None else float(w.sum())
        if w is not None and w_b <= 0:  # zero-weight rows: counted, nothing to add
            return PackedStats(n=self.n + n, w_sum=self.w_sum, mean=self.mean, packed=self.packed)
        mean_b = z.mean(axis=0) if w is None else (w @ z) / w_b
        total = self.w_sum + w_b
        rows = np.empty((n + 1, z.shape[1]))  # the centred block and the Chan row √f·δ
        np.subtract(z, mean_b, out=rows[:n])
        if w is not None:
            rows[:n] *= np.sqrt(w)[:, None]
        delta = mean_b - self.mean
        rows[n] = delta * np.sqrt(self.w_sum * w_b / total)
        add_gram(self.packed, rows)
        mean = self.mean + delta * (w_b / total)
        return PackedStats(n=self.n + n, w_sum=total, mean=mean, packed=self.packed)

    def merge(self, other: PackedStats) -> PackedStats:
        """Chan et al. merge of two triangles, in place on ``self.packed``."""
        return self.absorb_pieces(self, other.pieces(len(other.packed) * 8 or 8))

    def pieces(self, piece_bytes: int = PIECE_BYTES) -> Iterator:
        """The statistics as records: ``(n, w_sum, mean)``, then the triangle in consecutive
        slices of at most ``piece_bytes`` (views: pickling one carries only its own bytes)."""
        yield self.n, self.w_sum, self.mean
        yield from slices(self.packed, piece_bytes)

    @staticmethod
    def piece_count(width: int, piece_bytes: int = PIECE_BYTES) -> int:
        """How many records :meth:`pieces` yields for statistics of ``width`` columns."""
        return 1 + slice_count(int(offsets(width)[-1]), piece_bytes)

    @staticmethod
    def absorb_pieces(acc: PackedStats | None, records: Iterator) -> PackedStats:
        """``acc`` merged with the statistics whose :meth:`pieces` are ``records``, a slice at a
        time in ``acc``'s buffer (consumed, as by :meth:`merge`); ``acc=None``: the first
        statistics, assembled into one new buffer."""
        n, w_sum, mean = next(records)
        if acc is None:
            packed = assemble(records, int(offsets(len(mean))[-1]))
            return PackedStats(n=n, w_sum=w_sum, mean=mean, packed=packed)
        total = acc.w_sum + w_sum
        both = acc.w_sum > 0 and w_sum > 0
        delta = mean - acc.mean
        f = acc.w_sum * w_sum / total if both else 0.0
        offs, start = offsets(acc.width), 0
        for chunk in records:
            stop = start + len(chunk)
            np.add(acc.packed[start:stop], chunk, out=acc.packed[start:stop])
            if both:
                _rank_one_slice(acc.packed, offs, start, stop, f, delta)
            start = stop
        if not both:
            mean = acc.mean if w_sum == 0 else mean
        else:
            mean = acc.mean + delta * (w_sum / total)
        return PackedStats(n=acc.n + n, w_sum=total, mean=mean, packed=acc.packed)

    def to_stats(self) -> SufficientStats:
        """The full-matrix statistics the solvers take (one ``m × m`` allocation)."""
        return SufficientStats(
            n=self.n, w_sum=self.w_sum, mean=self.mean, comoment=unpack(self.packed, self.width)
        )

    # what :class:`~.stats.SufficientStats` answers for the solve, the guards and the summary,
    # read off the triangle: a wide fit never forms the full matrix unless a dense path needs it
    full = to_stats

    def diagonal(self) -> np.ndarray:
        return self.packed[offsets(self.width)[1:] - 1]  # (j, j) ends column j: a new array

    def column(self, j: int) -> np.ndarray:
        offs = offsets(self.width)
        return np.concatenate(
            [self.packed[offs[j] : offs[j + 1]], self.packed[offs[j + 1 : -1] + j]]
        )

    def nonfinite_column(self) -> int | None:
        bad = np.flatnonzero(~np.isfinite(self.packed))
        if not len(bad):
            return None
        offs = offsets(self.width)  # entry k is (i, j), i ≤ j: the first column to hold one is i
        return int((bad - offs[np.searchsorted(offs, bad, side="right") - 1]).min())

    def quadratic(self, v: np.ndarray) -> float:
        offs, total = offsets(self.width), 0.0
        for j in range(self.width):  # column j: 2 Σ_{i<j} C_ij v_i v_j + C_jj v_j²
            column = self.packed[offs[j] : offs[j + 1]]
            total += v[j] * (2.0 * (column[:j] @ v[:j]) + column[j] * v[j])
        return float(total)

    def scaled_rfp(self, n: int, scale: np.ndarray, shift=None) -> np.ndarray:
        return rfp.from_packed(self.packed, offsets(self.width), n, scale, shift)

    def frozen(self) -> PackedStats:
        """These statistics with a read-only triangle: what a fitted model keeps (no in-place
        :meth:`absorb` or :meth:`merge` can change it; :meth:`full` gives a mergeable copy)."""
        self.packed.flags.writeable = False
        return self


def add_gram(packed: np.ndarray, rows: np.ndarray, panel: int = PANEL) -> None:
    """``packed += triu(rowsᵀ rows)`` in place, a panel of columns at a time.

    Each panel ``[j0, j1)`` costs one GEMM ``rows[:, j0:j1]ᵀ rows[:, :j1]`` — the upper trapezoid
    of those columns, so the whole triangle costs about half of ``rowsᵀ rows`` — and its row
    ``j − j0`` (columns ``0 … j``) is column ``j`` of the packed triangle: one contiguous add.
    """
    m = rows.shape[1]
    offs = offsets(m)
    for j0 in range(0, m, panel):
        j1 = min(m, j0 + panel)
        product = rows[:, j0:j1].T @ rows[:, :j1]
        for j in range(j0, j1):
            packed[offs[j] : offs[j + 1]] += product[j - j0, : j + 1]


def _rank_one_slice(
    packed: np.ndarray, offs: np.ndarray, start: int, stop: int, f: float, delta: np.ndarray
) -> None:
    """``packed[start:stop] += (f δδᵀ)`` restricted to those packed positions: column ``j``'s
    entries ``i`` get ``δᵢ·(f δⱼ)`` (the operation order of BLAS's reference ``dspr``)."""
    j = int(np.searchsorted(offs, start, side="right")) - 1
    while j < len(delta) and offs[j] < stop:
        lo, hi = max(start, int(offs[j])), min(stop, int(offs[j + 1]))
        packed[lo:hi] += delta[lo - offs[j] : hi - offs[j]] * (f * delta[j])
        j += 1
