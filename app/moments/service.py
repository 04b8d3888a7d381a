"""Moments catalog: create, list, change, and the lookup ingestion uses to resolve keys."""

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import TypeAdapter
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import dialect_insert, one_of, utcnow
from app.errors import Conflict, ErrorDetail, NotFound
from app.moments import factors as moment_factors
from app.moments.factors import Factor
from app.moments.models import Moment
from app.moments.schemas import Channel, MomentCreate, MomentKey, MomentUpdate
from app.pagination import decode_cursor, encode_cursor
from app.scales import Sentiment

_position = TypeAdapter(tuple[MomentKey])
"""The catalogue's sort key in its cursors: the moment's key."""


async def create_moment(
    session: AsyncSession, *, data: MomentCreate, default_target: float | None
) -> Moment:
    """Catalogue a moment; 409 if the key is taken."""
    existing = await session.scalar(select(Moment.id).where(Moment.key == data.key))
    if existing is not None:
        raise Conflict(
            f"Moment '{data.key}' already exists; change it with PATCH /v1/moments/{data.key}.",
            details=[ErrorDetail(field="body.key", message="already exists", type="duplicate")],
        )
    fields = data.model_dump()
    fields["factors"] = _stored_factors(data)
    if "target_negative_rate" not in data.model_fields_set:
        fields["target_negative_rate"] = default_target
    fields["name"] = data.name or data.key
    moment = Moment(**fields, archived=False, auto_registered=False)
    session.add(moment)
    await session.flush()
    return moment


async def get_moment(session: AsyncSession, *, key: str) -> Moment:
    moment = await session.scalar(select(Moment).where(Moment.key == key))
    if moment is None:
        raise NotFound(f"No moment with key '{key}'.")
    return moment


async def list_moments(
    session: AsyncSession,
    *,
    channel: str | None,
    owner_team: str | None,
    archived: bool | None,
    cursor: str | None,
    limit: int,
) -> tuple[list[Moment], str | None]:
    """One page of moments in key order, and the cursor of the next page."""
    query = select(Moment).order_by(Moment.key).limit(limit + 1)
    if channel is not None:
        query = query.where(Moment.channel == channel)
    if owner_team is not None:
        query = query.where(Moment.owner_team == owner_team)
    if archived is not None:
        query = query.where(Moment.archived == archived)
    if cursor is not None:
        (after_key,) = decode_cursor(cursor, _position)
        query = query.where(Moment.key > after_key)
    moments = list((await session.scalars(query)).all())
    if len(moments) <= limit:
        return moments, None
    page = moments[:limit]
    return page, encode_cursor(page[-1].key)


async def update_moment(session: AsyncSession, *, key: str, data: MomentUpdate) -> Moment:
    moment = await get_moment(session, key=key)
    changes = data.model_dump(exclude_unset=True)
    if "factors" in changes:
        changes["factors"] = _stored_factors(data)
    for field, value in changes.items():
        setattr(moment, field, value)
    moment.updated_at = utcnow()
    await session.flush()
    return moment


def _stored_factors(data: MomentCreate | MomentUpdate) -> list[dict[str, Any]] | None:
    if data.factors is None:
        return None
    return [factor.model_dump(mode="json") for factor in data.factors]


async def factors_of(
    session: AsyncSession, *, moment_id: int, sentiment: Sentiment | None = None
) -> list[Factor]:
    """The factors a moment offers (its own, or its channel's defaults), those of one
    sentiment if given, in the order a client is shown them."""
    row = (
        await session.execute(select(Moment.factors, Moment.channel).where(Moment.id == moment_id))
    ).one_or_none()
    if row is None:
        raise NotFound(f"No moment with id {moment_id}.")
    return moment_factors.of_moment(row.factors, channel=row.channel, sentiment=sentiment)


@dataclass(frozen=True, slots=True)
class MomentRef:
    id: int
    channel: str
    factors: list[dict[str, Any]] | None = None
    """The moment's own factors; null: its channel's defaults."""

    def offered_factors(self) -> dict[str, Sentiment]:
        """The sentiment of each factor key the moment offers."""
        return moment_factors.offered(self.factors, channel=self.channel)


_REGISTERED_PER_STATEMENT = 500
"""Moments registered by one INSERT: 9 parameters each, well under SQLite's limit."""


async def resolve_keys(
    session: AsyncSession,
    *,
    channels: Mapping[str, str | None],
    register_unknown: bool,
    default_target: float | None,
) -> dict[str, MomentRef]:
    """Map moment keys to ids and channels, registering unknown ones when allowed.

    `channels` gives each key the channel its touchpoints name, which becomes the default
    channel of a newly registered moment. Registration is an insert that ignores
    conflicts, so concurrent requests naming the same new key both succeed.
    """
    refs = await _refs_by_key(session, channels.keys())
    # Sorted: every request registers keys in the same order, so two requests naming the
    # same new keys wait for one another in turn, never each for the other (a deadlock).
    unknown = sorted(key for key in channels if key not in refs)
    if unknown and register_unknown:
        now = utcnow()
        rows = [
            {
                "key": key,
                "name": key,
                "channel": channels[key] or Channel.other.value,
                "target_negative_rate": default_target,
                "auto_follow_up": True,
                "archived": False,
                "auto_registered": True,
                "created_at": now,
                "updated_at": now,
            }
            for key in unknown
        ]
        # One statement of many rows, not one per row: the requests that find the same
        # new keys at once (a system starting to post) wait on each other's inserts, and
        # each statement of theirs is a wait.
        for start in range(0, len(rows), _REGISTERED_PER_STATEMENT):
            chunk = rows[start : start + _REGISTERED_PER_STATEMENT]
            await session.execute(
                dialect_insert(session, Moment).values(chunk).on_conflict_do_nothing()
            )
        refs.update(await _refs_by_key(session, unknown))
    return refs


async def _refs_by_key(session: AsyncSession, keys: Collection[str]) -> dict[str, MomentRef]:
    if not keys:
        return {}
    query = select(Moment.key, Moment.id, Moment.channel, Moment.factors).where(
        one_of(session, Moment.key, keys)
    )
    result = await session.execute(query)
    return {
        key: MomentRef(moment_id, channel, factors) for key, moment_id, channel, factors in result
    }
