"""Shared output of every offline bench: a table, a JSON file and a cost-vs-quality PNG.

A bench computes one :class:`SystemResult` per single tier ("every request
on tier X") and one per cascade, then hands a :class:`BenchReport` to
:func:`write_outputs`.  Cost ratios are always against the report's
``reference`` system (the model a team would otherwise use for everything).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "BenchReport",
    "SystemResult",
    "TierStats",
    "format_table",
    "pareto_front",
    "plot_cost_quality",
    "to_json",
    "write_outputs",
]


@dataclass(frozen=True, slots=True)
class TierStats:
    """How one tier behaved inside a cascade."""

    tier: str
    reached: int
    accepted: int
    escalated: int
    cost_usd: float

    @property
    def escalation_rate(self) -> float:
        """Share of the requests that reached this tier and left it unaccepted."""
        return self.escalated / self.reached if self.reached else 0.0


@dataclass(frozen=True, slots=True)
class SystemResult:
    """One row of a bench: a single tier or a cascade, over the same items."""

    name: str
    kind: str  # "single" or "cascade"
    items: int
    quality: float
    cost_usd: float
    #: Share of the cost computed from estimated (not recorded) token counts.
    estimated_cost_share: float = 0.0
    tiers: tuple[TierStats, ...] = ()
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def cost_per_item(self) -> float:
        return self.cost_usd / self.items if self.items else 0.0


@dataclass(frozen=True, slots=True)
class BenchReport:
    """Everything a bench measured on one dataset."""

    suite: str
    data: str
    quality_label: str
    systems: tuple[SystemResult, ...]
    reference: str
    notes: tuple[str, ...] = ()
    #: Figures from each system's ``extra`` shown as table columns: (key, header).
    columns: tuple[tuple[str, str], ...] = ()

    def system(self, name: str) -> SystemResult:
        for result in self.systems:
            if result.name == name:
                return result
        raise KeyError(name)

    def cost_ratio(self, name: str) -> float:
        """Cost of ``name`` over the reference's cost (``nan`` when the reference cost nothing)."""
        reference = self.system(self.reference).cost_usd
        return self.system(name).cost_usd / reference if reference else math.nan


def pareto_front(points: Sequence[tuple[float, float]]) -> list[int]:
    """Indices of the points no other point beats on both lower cost and higher quality."""
    front = []
    for i, (cost, quality) in enumerate(points):
        dominated = any(
            (c <= cost and q >= quality) and (c < cost or q > quality)
            for j, (c, q) in enumerate(points)
            if j != i
        )
        if not dominated:
            front.append(i)
    return front


def format_table(report: BenchReport) -> str:
    """A plain-text table: quality, $, cost ratio and escalation per system."""
    width = max(len("system"), *(len(r.name) for r in report.systems))
    extra_headers = "".join(f" {title:>{len(title)}}" for _, title in report.columns)
    header = (
        f"{'system':<{width}} {'items':>6} {report.quality_label:>9} {'$ total':>10} {'$/item':>10} {'x ref':>7}"
        f"{extra_headers}  escalation by tier"
    )
    lines = [f"{report.suite} on {report.data}", header, "-" * len(header)]
    for result in report.systems:
        escalation = ", ".join(
            f"{t.tier} {t.escalation_rate:.0%} of {t.reached}" for t in result.tiers if t.reached
        )
        estimated = "*" if result.estimated_cost_share > 0 else " "
        lines.append(
            f"{result.name:<{width}} {result.items:>6} {result.quality:>9.3f} {result.cost_usd:>9.4f}{estimated} {result.cost_per_item:>10.6f}"
            f" {report.cost_ratio(result.name):>7.3f}{_extra_cells(report, result)}  {escalation}"
        )
    if any(r.estimated_cost_share > 0 for r in report.systems):
        lines.append("* part of this cost comes from estimated token counts (see JSON: estimated_cost_share)")
    lines.append(f"x ref = cost relative to {report.reference}")
    lines.extend(report.notes)
    return "\n".join(line.rstrip() for line in lines)


def _extra_cells(report: BenchReport, result: SystemResult) -> str:
    cells = []
    for key, title in report.columns:
        value = result.extra.get(key)
        text = f"{value:.3f}" if isinstance(value, float) else "—" if value is None else str(value)
        cells.append(f" {text:>{len(title)}}")
    return "".join(cells)


def to_json(report: BenchReport) -> dict[str, Any]:
    systems = []
    for result in report.systems:
        row = asdict(result)
        row["cost_ratio"] = _finite(report.cost_ratio(result.name))
        row["cost_per_item"] = result.cost_per_item
        row["tiers"] = [{**asdict(t), "escalation_rate": t.escalation_rate} for t in result.tiers]
        row["extra"] = dict(result.extra)
        systems.append(row)
    return {
        "suite": report.suite,
        "data": report.data,
        "quality_label": report.quality_label,
        "reference": report.reference,
        "systems": systems,
        "notes": list(report.notes),
    }


def plot_cost_quality(report: BenchReport, path: Path) -> Path:
    """Cost against quality, one point per system, the Pareto front drawn as a line."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    points = [(r.cost_usd, r.quality) for r in report.systems]
    front = sorted(pareto_front(points), key=lambda i: points[i][0])
    fig, ax = plt.subplots(figsize=(8, 5.5))
    for result, (cost, quality) in zip(report.systems, points, strict=True):
        marker, color = ("*", "tab:red") if result.kind == "cascade" else ("o", "tab:blue")
        ax.scatter([cost], [quality], marker=marker, s=140 if marker == "*" else 50, color=color, zorder=3)
        ax.annotate(result.name, (cost, quality), textcoords="offset points", xytext=(6, 4), fontsize=8)
    ax.plot([points[i][0] for i in front], [points[i][1] for i in front], "--", color="gray", zorder=2,
            label="Pareto front")  # fmt: skip
    ax.set_xlabel("total cost (USD)")
    ax.set_ylabel(report.quality_label)
    ax.set_title(f"{report.suite}: cost vs {report.quality_label} (cascades as stars)")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def write_outputs(report: BenchReport, out_dir: Path, stem: str | None = None) -> dict[str, Path]:
    """Write ``<stem>.json`` and ``<stem>.png`` into ``out_dir``; return their paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = stem or report.suite
    json_path = out_dir / f"{stem}.json"
    json_path.write_text(json.dumps(to_json(report), indent=2) + "\n")
    png_path = plot_cost_quality(report, out_dir / f"{stem}.png")
    return {"json": json_path, "png": png_path}


def _finite(value: float) -> float | None:
    return None if math.isnan(value) else value
