"""Pure numpy: exact power-of-two rescaling of data whose magnitude would overflow the distance
kernel, and the cost brought back to the data's units."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

SAFE_EXPONENT = 100  # |values| within 2^±100: squared distances of any sum stay in float64


@dataclass(frozen=True, kw_only=True)
class Rescale:
    """Euclidean k-means on ``(x − shift) · 2^−exponent`` instead of ``x``, exactly undone after.

    k-means is invariant under translation, and uniform scaling by a power of two is exact, so
    the centres come back bit-for-bit as the means of the original points (to one rounding of the
    shift). Used only when the data's magnitude is outside 2^±100 (about 1e±30): there ``‖x‖²`` in
    the distance kernel would overflow (1e160 squared) or underflow (1e-170 squared) although the
    points are perfectly representable. The cost, a sum of squared distances, is scaled back by
    ``4^exponent``; when that is not a float64 the fit refuses (:meth:`cost_out` returns inf/0).
    """

    shift: np.ndarray  # (d,) the midpoint of every column's range
    exponent: int
    peak: np.ndarray  # (d,) the largest |value| of every column, for messages

    @classmethod
    def for_range(cls, lo: np.ndarray, hi: np.ndarray) -> Rescale | None:
        """The rescaling for columns whose finite values lie in [lo, hi], or ``None`` if the
        values are within 2^±SAFE_EXPONENT (then nothing changes)."""
        peak = np.maximum(np.abs(lo), np.abs(hi))
        top = float(peak.max()) if peak.size else 0.0
        if top == 0 or 2.0**-SAFE_EXPONENT <= top <= 2.0**SAFE_EXPONENT:
            return None
        shift = lo / 2 + hi / 2  # halves first: lo + hi could overflow
        half = float((hi / 2 - lo / 2).max())
        exponent = int(np.frexp(half)[1]) if half > 0 else int(np.frexp(top)[1])
        return cls(shift=shift, exponent=exponent, peak=peak)

    def apply(self, x: np.ndarray) -> np.ndarray:
        if self.exponent >= 0:  # scale first: x − shift could overflow
            return np.ldexp(x, -self.exponent) - np.ldexp(self.shift, -self.exponent)
        return np.ldexp(x - self.shift, -self.exponent)

    def points_out(self, x: np.ndarray) -> np.ndarray:
        """Scaled points (or centres) back in the data's units."""
        return np.ldexp(x, self.exponent) + self.shift

    def length_out(self, length: float) -> float:
        return float(np.ldexp(length, self.exponent))

    def length_in(self, length: float) -> float:
        return float(np.ldexp(length, -self.exponent))

    def cost_out(self, cost: float) -> float:
        """A sum of squared distances back in the data's units (inf or 0 when not a float64)."""
        with np.errstate(over="ignore", under="ignore"):
            return float(np.ldexp(cost, 2 * self.exponent))


def unscaled_cost(cost: float, rescale: Rescale | None) -> float | None:
    """``cost`` in the data's units, or ``None`` when float64 cannot hold it (overflow,
    or a positive cost that underflows below the normal range)."""
    out = rescale.cost_out(cost) if rescale is not None else float(cost)
    if not np.isfinite(out) or (cost > 0 and out < np.finfo(np.float64).tiny):
        return None
    return out
