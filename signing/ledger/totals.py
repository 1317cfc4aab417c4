"""Published totals with small cells suppressed (DESIGN §1; issue: totals).

A breakdown by postcode district or by day can expose a small group ("two
people in DN55 signed"). Cells under the threshold are shown as "fewer than
N". Hiding one cell is not enough: the overall count is public, so the
total minus the visible cells gives the hidden ones back. So cells are also
withheld, smallest first, until the hidden cells' values cannot be worked
out from what is shown (see ``_determined``).

Districts are the figure this protects: nothing else publishes them. Days
are suppressed the same way on these pages, but each log leaf carries its
day, so a determined reader can count days from the log (THREAT_MODEL.md).
"""

import re
from dataclasses import dataclass

from peewee import fn

from ..models import Signature
from .publishing import in_latest_head

SHOWN, FEWER_THAN, WITHHELD = "shown", "fewer_than", "withheld"


@dataclass(frozen=True)
class Cell:
    label: str
    value: int
    state: str  # SHOWN, FEWER_THAN (under the threshold) or WITHHELD (to protect another)

    @property
    def public_value(self):
        return self.value if self.state == SHOWN else None


@dataclass(frozen=True)
class Breakdown:
    cells: list
    # True when the breakdown was withheld whole: too few signatures to split.
    withheld: bool = False


def _determined(hidden, hidden_sum, threshold):
    """Whether hidden cells' individual values follow from their sum.

    Each listed cell holds at least one signature. A "fewer than" cell lies
    in [1, threshold-1]; a withheld one in [threshold, ∞). The values are
    forced when there is one hidden cell, or the sum is the smallest
    possible, or (only "fewer than" cells) the largest possible.
    """
    fewer = sum(1 for cell in hidden if cell.state == FEWER_THAN)
    withheld = len(hidden) - fewer
    if len(hidden) == 1:
        return True
    if hidden_sum == fewer + withheld * threshold:
        return True
    return withheld == 0 and hidden_sum == fewer * (threshold - 1)


def suppress(counts, threshold):
    """Cells for ``counts`` (label → count > 0), none of them recoverable."""
    cells = {label: Cell(label, value, FEWER_THAN if value < threshold else SHOWN) for label, value in counts.items()}
    while True:
        hidden = [cell for cell in cells.values() if cell.state != SHOWN]
        if not hidden or not _determined(hidden, sum(cell.value for cell in hidden), threshold):
            break
        visible = sorted((cell for cell in cells.values() if cell.state == SHOWN), key=lambda c: (c.value, c.label))
        if not visible:
            return Breakdown([], withheld=True)
        smallest = visible[0]
        cells[smallest.label] = Cell(smallest.label, smallest.value, WITHHELD)
    return Breakdown(sorted(cells.values(), key=lambda c: natural_key(c.label)))


def natural_key(label):
    """Order labels as people count: S1, S2, …, S10 (not S1, S10, S2); dates stay in order."""
    # re.split with a group puts text at even places and digits at odd ones, so tuples compare like with like.
    return tuple(int(part) if index % 2 else part for index, part in enumerate(re.split(r"(\d+)", label)))


@dataclass(frozen=True)
class Totals:
    overall: int
    # Exact: each leaf of the public log already says online or paper.
    by_channel: dict
    by_district: Breakdown
    by_day: Breakdown
    threshold: int


def _grouped(petition_id, column):
    rows = (
        Signature.select(column, fn.COUNT(Signature.id))
        .where(in_latest_head(petition_id) & column.is_null(False))
        .group_by(column)
        .tuples()
    )
    return {str(label): count for label, count in rows}


def totals(petition, threshold):
    """Totals over the signatures the latest signed head counts."""
    channels = _grouped(petition.id, Signature.channel)
    return Totals(
        overall=sum(channels.values()),
        by_channel=channels,
        by_district=suppress(_grouped(petition.id, Signature.district), threshold),
        by_day=suppress(_grouped(petition.id, Signature.day), threshold),
        threshold=threshold,
    )
