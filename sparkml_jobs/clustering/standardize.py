"""Per-feature weighted means and standard deviations for ``KMeans(standardize=True)`` (pure).

The moments are a monoid carried by the load pass (:func:`~.lloyd.validate`): every block gives
its weight total, weighted mean and centred sum of squares, and blocks merge with the pairwise
update of Chan, Golub & LeVeque, so the statistics cost no extra read of the data and no
cancellation (``Σwx² − (Σwx)²/Σw`` would lose every digit of a column with a large mean).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sparkml_jobs.errors import InputError


@dataclass(frozen=True, slots=True)
class Moments:
    """Weighted first and centred second moments of every column of some blocks."""

    weight: float  # Σ w (the row count when unweighted)
    mean: np.ndarray  # (d,) Σ w x / Σ w
    m2: np.ndarray  # (d,) Σ w (x − mean)²

    @classmethod
    def zero(cls, d: int) -> Moments:
        return cls(0.0, np.zeros(d), np.zeros(d))

    @classmethod
    def of(cls, x: np.ndarray, w: np.ndarray | None) -> Moments:
        """The moments of one block (two passes over the block, which is in memory)."""
        d = x.shape[1]
        if len(x) == 0:
            return cls.zero(d)
        if w is None:
            mean = x.mean(axis=0)
            centred = x - mean
            return cls(float(len(x)), mean, np.einsum("ij,ij->j", centred, centred))
        total = float(w.sum())
        if total == 0:
            return cls.zero(d)
        mean = (w @ x) / total
        centred = x - mean
        return cls(total, mean, np.einsum("i,ij,ij->j", w, centred, centred))

    def merge(self, other: Moments) -> Moments:
        """Chan et al.'s pairwise merge (exact in exact arithmetic, stable in floating point)."""
        if other.weight == 0:
            return self
        if self.weight == 0:
            return other
        total = self.weight + other.weight
        delta = other.mean - self.mean
        mean = self.mean + delta * (other.weight / total)
        m2 = self.m2 + other.m2 + delta**2 * (self.weight * other.weight / total)
        return Moments(total, mean, m2)


@dataclass(frozen=True, slots=True)
class Standardizer:
    """``(x − mean) / scale`` per feature, and its inverse for centres."""

    mean: np.ndarray  # (d,)
    scale: np.ndarray  # (d,) population (ddof=0) weighted standard deviation

    @classmethod
    def from_moments(
        cls, moments: Moments, features: list[str], lo: np.ndarray, hi: np.ndarray
    ) -> Standardizer:
        """The scaling of the data, or an :class:`InputError` naming a column it cannot scale:
        a constant one (standard deviation 0: its range ``lo == hi`` or zero variance) or one
        whose moments overflow float64."""
        with np.errstate(over="ignore", invalid="ignore"):
            scale = np.sqrt(moments.m2 / moments.weight) if moments.weight > 0 else moments.m2
        constant = [f for j, f in enumerate(features) if lo[j] == hi[j] or scale[j] == 0]
        if constant:
            raise InputError(
                f"--standardize: column(s) {', '.join(repr(c) for c in constant)} are constant "
                "(standard deviation 0), so they cannot be standardised; leave them out of "
                "--features"
            )
        bad = [
            f
            for j, f in enumerate(features)
            if not (np.isfinite(scale[j]) and np.isfinite(moments.mean[j]))
        ]
        if bad:
            raise InputError(
                f"--standardize: the standard deviation of column(s) "
                f"{', '.join(repr(c) for c in bad)} overflows float64; rescale them first"
            )
        return cls(mean=np.asarray(moments.mean, dtype=np.float64), scale=scale)

    def apply(self, x: np.ndarray) -> np.ndarray:
        return (x - self.mean) / self.scale

    def points_out(self, x: np.ndarray) -> np.ndarray:
        """Standardised points (or centres) back in the data's units."""
        return x * self.scale + self.mean
