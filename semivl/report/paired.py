"""Paired comparisons over seeds: the statistics behind the findings of ``tables.md``.

Two methods trained on the same labelled split with the same seeds give one difference per
seed. With 3 to 5 seeds the honest summary is the mean difference with its 95% confidence
interval from Student's t distribution (n - 1 degrees of freedom):

    mean(d) +- t(0.975, n - 1) * sd(d) / sqrt(n)

A finding *holds* when the whole interval is above zero, *does not hold* when it is below
zero, and is *inconclusive* when it contains zero (or when only one seed pairs up: no
interval). A comparison against a constant (the zero-shot labels, one deterministic number)
is the one-sample version of the same interval. Chosen over a bootstrap over seeds, which
with 3 values has only 10 distinct resamples and no coverage guarantee; the t interval
assumes the per-seed differences are roughly normal, which is the usual assumption of the
field's "mean +- std over seeds" tables made explicit.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

# Two-sided 95% quantiles of Student's t, t(0.975, df), for df = 1..30 (standard tables);
# beyond 30 the normal 1.96 is within 2%. Kept here so that the report needs no scipy.
_T975 = (
    12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228,
    2.201, 2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086,
    2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042,
)  # fmt: skip

HOLDS, FAILS, INCONCLUSIVE, NOT_MEASURED = (
    "holds",
    "**does not hold**",
    "inconclusive",
    "not measured",
)


def t975(df: int) -> float:
    """t(0.975, df) for df >= 1."""
    if df < 1:
        raise ValueError(f"degrees of freedom: expected >= 1, got {df}")
    return _T975[df - 1] if df <= len(_T975) else 1.96


@dataclass(frozen=True)
class Interval:
    """Mean difference of ``n`` paired values and its 95% interval (NaN bounds when n < 2)."""

    mean: float
    low: float
    high: float
    n: int

    @property
    def verdict(self) -> str:
        if self.n == 0:
            return NOT_MEASURED
        if self.n < 2 or math.isnan(self.low):
            return INCONCLUSIVE
        if self.low > 0:
            return HOLDS
        if self.high < 0:
            return FAILS
        return INCONCLUSIVE

    def describe(self, unit: str = "") -> str:
        """``Δ +5.2 [+1.3, +9.1], 3 seeds`` (the interval left out with one seed)."""
        if self.n == 0:
            return "no paired runs"
        text = f"Δ {signed(self.mean)}{unit}"
        if self.n >= 2:
            text += f" [{signed(self.low)}, {signed(self.high)}]"
        seeds = "seed" if self.n == 1 else "seeds"
        return f"{text}, {self.n} {seeds}"


def signed(value: float) -> str:
    """``+1.2`` / ``−3.4`` (a real minus sign, as the tables print)."""
    return f"{value:+.1f}".replace("-", "−")


def interval(differences: list[float]) -> Interval:
    """The mean of ``differences`` with its 95% t interval."""
    values = [float(d) for d in differences if not math.isnan(float(d))]
    n = len(values)
    if n == 0:
        return Interval(math.nan, math.nan, math.nan, 0)
    mean = sum(values) / n
    if n < 2:
        return Interval(mean, math.nan, math.nan, n)
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
    half = t975(n - 1) * sd / math.sqrt(n)
    return Interval(mean, mean - half, mean + half, n)


def paired_differences(a: dict[int, float], b: dict[int, float]) -> list[float]:
    """``a[seed] - b[seed]`` over the seeds both have, in seed order."""
    return [a[s] - b[s] for s in sorted(set(a) & set(b))]


def all_hold(intervals: list[Interval]) -> str:
    """One verdict for "at every split": holds if each holds, does not hold if any fails,
    inconclusive otherwise."""
    verdicts = [i.verdict for i in intervals if i.n]
    if not verdicts:
        return NOT_MEASURED
    if all(v == HOLDS for v in verdicts):
        return HOLDS
    if any(v == FAILS for v in verdicts):
        return FAILS
    return INCONCLUSIVE
