"""Medians, percentiles and spreads, and how the benchmarks print them."""

from __future__ import annotations

import statistics
from collections.abc import Iterable


def percentile(values: list[float], share: float) -> float:
    """The nearest-rank percentile of sorted values (share 0.95 is p95)."""
    return values[min(len(values) - 1, round(share * (len(values) - 1)))]


def summary(values: Iterable[float | None]) -> dict:
    """n, missed (None values), median, p95, min and max."""
    values = list(values)
    got = sorted(v for v in values if v is not None and v == v)  # None and NaN: no result
    if not got:
        return {"n": 0, "missed": len(values)}
    return {
        "n": len(got),
        "missed": len(values) - len(got),
        "median": statistics.median(got),
        "p95": percentile(got, 0.95),
        "min": got[0],
        "max": got[-1],
    }


def fmt(s: dict, unit: str = " s", digits: int = 3) -> str:
    """'median unit (p95 x, min-max)' of a summary, and how many were missed."""
    if not s["n"]:
        return "no result"
    missed = f" ({s['missed']} missed)" if s["missed"] else ""
    f = f"{{:.{digits}f}}".format
    return f"{f(s['median'])}{unit} (p95 {f(s['p95'])}, {f(s['min'])}-{f(s['max'])}){missed}"


def spread(values: list[float], form: str = "{:.3f}", unit: str = "", sep: str = "-", empty: str = "none") -> str:
    """'median (min-max)', each formatted with form (sep " to " where values
    may be negative)."""
    if not values:
        return empty
    low, high = form.format(min(values)), form.format(max(values))
    return f"{form.format(statistics.median(values))}{unit} ({low}{sep}{high})"


def ratio(value: float | None, baseline: float | None) -> str:
    return f"{value / baseline:.2f}x" if value and baseline else "-"
