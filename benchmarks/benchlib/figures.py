"""Figures drawn from the benchmarks' saved results (benchmarks/results/*.json)
into docs/figures/, one SVG per benchmark that has results:

  failover      (a) VIP moved and (b) session back, per timer profile and fault
  nat_failover  the echo timeline through an LB failover, per mode: the
                silence before each echo reply, around the fault
  relay         the relay's rate and round trip against HAProxy alone
  runtime       the run times of site.yml, --check and the status view

matplotlib is a benchmark-only dependency (benchmarks/requirements.txt):
`make bench-figures` installs it into a virtualenv of its own. The SVGs
are reproducible: the same results draw the same bytes.

    python -m benchlib.figures [NAME ...]     (from benchmarks/)
"""

from __future__ import annotations

import statistics
import sys

from . import ROOT, results

OUTPUT = ROOT / "docs" / "figures"
COLOURS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728"]


def _plt():
    import matplotlib

    matplotlib.use("svg")
    import matplotlib.pyplot as plt

    plt.rcParams.update({"svg.hashsalt": "sdn_ha", "svg.fonttype": "none", "font.size": 9})
    return plt


def _caption(record: dict) -> str:
    return f"{record['revision']}, {record['finished'][:10]}, {record['cpus']} CPUs"


def _bars(ax, labels: list[str], series: dict[str, list[list[float]]], unit: str) -> None:
    """Horizontal bars at each label's median, whiskers from its min to its max."""
    height = 0.8 / len(series)
    for i, (name, per_label) in enumerate(series.items()):
        ys = [n + i * height for n in range(len(labels))]
        med = [statistics.median(v) if v else 0 for v in per_label]
        low = [m - min(v) if v else 0 for m, v in zip(med, per_label, strict=True)]
        high = [max(v) - m if v else 0 for m, v in zip(med, per_label, strict=True)]
        ax.barh(ys, med, height, xerr=[low, high], label=name, color=COLOURS[i % len(COLOURS)], capsize=2)
    ax.set_yticks([n + height * (len(series) - 1) / 2 for n in range(len(labels))], labels)
    ax.invert_yaxis()
    ax.set_xlabel(unit)
    ax.grid(axis="x", alpha=0.3)
    ax.legend(loc="best")


def failover(record: dict, plt) -> None:
    cases = record["data"]["cases"]
    labels = list(cases)
    fig, ax = plt.subplots(figsize=(7, 0.45 * len(labels) + 1.2))
    series = {
        "(a) VIP moved": [[r[0] for r in cases[c] if r[0] is not None] for c in labels],
        "(b) session back": [[r[1] for r in cases[c] if r[1] is not None] for c in labels],
    }
    _bars(ax, labels, series, "seconds from the fault (median, min-max)")
    ax.set_title(f"LB failover by keepalived profile and fault\n{_caption(record)}")
    fig.tight_layout()
    fig.savefig(OUTPUT / "failover.svg", metadata={"Date": None})


def nat_failover(record: dict, plt) -> None:
    cases = record["data"]["cases"]
    fig, axes = plt.subplots(len(cases), 1, figsize=(7, 1.8 * len(cases) + 0.6), sharex=True, sharey=True)
    for ax, (case, trials) in zip(axes if len(cases) > 1 else [axes], cases.items(), strict=True):
        stalls = [t["stall"] for t in trials]
        typical = trials[stalls.index(sorted(stalls)[(len(stalls) - 1) // 2])]  # the trial with the median stall
        xs = [t for t, _ in typical["timeline"]]
        ys = [gap * 1000 for _, gap in typical["timeline"]]
        ax.plot(xs, ys, ".", markersize=2, color=COLOURS[0], label="silence before an echo reply")
        ax.axvline(0, color="black", linewidth=0.8)
        if typical["master_back"] is not None:
            ax.axvline(typical["master_back"], color=COLOURS[2], linestyle="--", label="master fed again")
        reset = " (session reset)" if typical["reset"] else " (no reset)"
        ax.set_title(f"{case}: stall {typical['stall']:.3f} s{reset}", loc="left")
        ax.set_yscale("symlog", linthresh=1)  # gaps below 1 ms, and 0, on a linear stretch
        ax.set_ylabel("ms")
        ax.grid(alpha=0.3)
    axes_list = axes if len(cases) > 1 else [axes]
    axes_list[0].legend(loc="upper right")
    axes_list[-1].set_xlabel("seconds from the SIGKILL of the active LB (echo every 10 ms; the median-stall trial)")
    fig.suptitle(f"An LB failover seen by an emulated switch\n{_caption(record)}")
    fig.tight_layout()
    fig.savefig(OUTPUT / "nat_failover.svg", metadata={"Date": None})


def relay(record: dict, plt) -> None:
    data = record["data"]
    names, values = data["names"], data["values"]
    paths = list(names)
    labels = [names[p] for p in paths]
    fig, (rate_ax, rtt_ax) = plt.subplots(1, 2, figsize=(9, 0.5 * len(paths) + 1.8))
    _bars(
        rate_ax,
        labels,
        {
            "one message per write": [[v / 1000 for v in values[f"{p} one"]] for p in paths],
            "64 per write / 10": [[v / 10000 for v in values[f"{p} bulk"]] for p in paths],
        },
        "k msg/s (median, min-max)",
    )
    rate_ax.set_title("Rate, 128-byte PACKET_INs")
    _bars(
        rtt_ax,
        [""] * len(paths),
        {q: [values[f"{p} {q}"] for p in paths] for q in ("p50", "p99")},
        "microseconds (median, min-max)",
    )
    rtt_ax.set_title(f"Round trip at {record['arguments']['rate'] // 1000}k msg/s")
    fig.suptitle(f"The relay against HAProxy alone\n{_caption(record)}")
    fig.tight_layout()
    fig.savefig(OUTPUT / "relay.svg", metadata={"Date": None})


def runtime(record: dict, plt) -> None:
    times = record["data"]["times"]
    labels = list(times)
    fig, ax = plt.subplots(figsize=(7, 0.4 * len(labels) + 1.2))
    _bars(ax, labels, {"wall time": [times[c] for c in labels]}, "seconds (median, min-max)")
    ax.set_title(f"Run times on the converged lab\n{_caption(record)}")
    fig.tight_layout()
    fig.savefig(OUTPUT / "runtime.svg", metadata={"Date": None})


FIGURES = {"failover": failover, "nat_failover": nat_failover, "relay": relay, "runtime": runtime}


def main(names: list[str]) -> int:
    plt = _plt()
    OUTPUT.mkdir(parents=True, exist_ok=True)
    drawn = 0
    for name in names or list(FIGURES):
        path = results.DIRECTORY / f"{name}.json"
        if not path.exists():
            print(f"{name}: no results ({path.relative_to(ROOT)}); run its benchmark first")
            continue
        FIGURES[name](results.load(name), plt)
        plt.close("all")
        drawn += 1
        print(f"{name}: docs/figures/{name}.svg")
    return 0 if drawn else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
