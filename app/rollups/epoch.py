"""Which counts a snapshot sees, named by three numbers read in one statement.

Writers only ever append deltas; whatever takes deltas away or writes the rollups (a fold,
a rebuild) raises the epoch in the same transaction (`raise_epoch`). Between two raises
the deltas a later snapshot sees are a superset of those an earlier one saw, so the epoch
with the number of pending deltas of each kind tells two snapshots' counts apart exactly:
equal numbers, equal counts. Reading them costs a count of the pending deltas, which the
folder keeps to a few seconds' worth.
"""

from typing import NamedTuple, cast

from sqlalchemy import Table, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.rollups.models import DetailDelta, RollupDelta, RollupEpoch

_epoch = cast(Table, RollupEpoch.__table__)


class CountsState(NamedTuple):
    epoch: int
    rollup_deltas: int
    detail_deltas: int


_STATE = select(
    select(_epoch.c.epoch).scalar_subquery(),
    select(func.count()).select_from(RollupDelta).scalar_subquery(),
    select(func.count()).select_from(DetailDelta).scalar_subquery(),
)


async def state(session: AsyncSession) -> CountsState:
    """The counts the session's snapshot sees, by name."""
    epoch, rollup_deltas, detail_deltas = (await session.execute(_STATE)).one()
    return CountsState(int(epoch or 0), int(rollup_deltas), int(detail_deltas))


async def raise_epoch(session: AsyncSession) -> None:
    """Mark, in the session's transaction, that deltas are taken away or rollups rewritten."""
    await session.execute(update(_epoch).values(epoch=_epoch.c.epoch + 1))
