"""Queries every domain's repository shares."""

from collections.abc import Sequence
from typing import Any, TypeVar

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from billgraph.db.models import Base

M = TypeVar("M", bound=Base)


async def by_ids(
    session: AsyncSession, model: type[M], organization_id: int, ids: Sequence[int]
) -> dict[int, M]:
    """The organization's rows of `model` (a table with `id` and `organization_id`) by id;
    ids of another organization are simply not found."""
    columns: Any = model
    rows = await session.scalars(
        select(model).where(columns.organization_id == organization_id, columns.id.in_(ids))
    )
    return {row.id: row for row in rows}  # type: ignore[attr-defined]
