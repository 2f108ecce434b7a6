"""The statistics of an A/B experiment: pure functions of counts, standard library only.

The test (``METHOD``): the variant with the highest observed rate is compared with every
other variant by a two-proportion z-test (pooled standard error, two-sided); the p-values
of those ``k - 1`` comparisons are corrected for multiplicity by Holm-Bonferroni. The best
variant wins only when every comparison is significant at ``1 - confidence`` after the
correction; otherwise the result is inconclusive. Each variant's rate carries a Wilson
score interval at the same confidence.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist

METHOD = ("two-proportion z-test (pooled, two-sided) of the best variant against each other "
          "variant, Holm-Bonferroni corrected; Wilson score intervals")
_NORMAL = NormalDist()


def z_for(confidence: float) -> float:
    """The two-sided critical value of the standard normal for ``confidence`` (0.95: 1.96)."""
    return _NORMAL.inv_cdf(1 - (1 - confidence) / 2)


def wilson(successes: int, trials: int, confidence: float = 0.95) -> tuple[float, float]:
    """The Wilson score interval of a proportion; ``(0, 1)`` when nothing was tried."""
    if trials <= 0:
        return 0.0, 1.0
    z = z_for(confidence)
    p = min(max(successes, 0), trials) / trials  # counters a race left off by one stay in range
    denominator = 1 + z * z / trials
    centre = (p + z * z / (2 * trials)) / denominator
    half = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)


def two_proportion_z(x1: int, n1: int, x2: int, n2: int) -> tuple[float, float]:
    """``(z, two-sided p)`` of H0 p1 == p2 with the pooled standard error. No data, or no
    variance (both all-success or all-failure): ``(0, 1)``."""
    if n1 <= 0 or n2 <= 0:
        return 0.0, 1.0
    x1, x2 = min(max(x1, 0), n1), min(max(x2, 0), n2)
    pooled = (x1 + x2) / (n1 + n2)
    se = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    if se == 0:
        return 0.0, 1.0
    z = (x1 / n1 - x2 / n2) / se
    return z, 2 * (1 - _NORMAL.cdf(abs(z)))


def holm(p_values: list[float]) -> list[float]:
    """Holm-Bonferroni adjusted p-values, in the order given (monotone, capped at 1)."""
    m = len(p_values)
    order = sorted(range(m), key=lambda i: p_values[i])
    adjusted = [0.0] * m
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p_values[i]))
        adjusted[i] = running
    return adjusted


@dataclass(frozen=True)
class Outcome:
    winner: str | None  # None: inconclusive
    best: str  # the variant with the highest observed rate (the first on a tie)
    p_values: dict[str, float]  # Holm-adjusted p of best vs. each other variant


def decide(counts: dict[str, tuple[int, int]], confidence: float) -> Outcome:
    """``counts``: variant -> (successes, trials), in variant order. The best observed
    variant wins when it beats every other one at ``1 - confidence`` after Holm's correction."""
    names = list(counts)
    rates = {n: min(counts[n][0], counts[n][1]) / counts[n][1] if counts[n][1] > 0 else 0.0
             for n in names}
    best = max(names, key=lambda n: rates[n])  # max keeps the first of equals
    others = [n for n in names if n != best]
    raw = [two_proportion_z(*counts[best], *counts[n])[1] for n in others]
    adjusted = dict(zip(others, holm(raw), strict=True))
    alpha = 1 - confidence
    wins = bool(others) and all(rates[best] > rates[n] and adjusted[n] <= alpha for n in others)
    return Outcome(best if wins else None, best, adjusted)
