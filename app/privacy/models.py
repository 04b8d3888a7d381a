from datetime import datetime

from sqlalchemy import JSON, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from app.db import NEVER_REUSED_IDS, Base, UtcDateTime
from app.touchpoints.models import BigId


class AuditEntry(Base):
    """One erasure or purge: what was removed, when, by whom; never whose data it was.

    An erasure names its client only by `client_hash`, an HMAC of the ref under the service
    secret: an auditor who knows a ref can find its erasure, and the table alone tells
    nothing about who was erased. The key is named by number and prefix without a foreign
    key: the record must outlive anything it names.
    """

    __tablename__ = "audit_entry"
    __table_args__ = NEVER_REUSED_IDS

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(UtcDateTime)
    action: Mapped[str] = mapped_column(String(16))
    client_hash: Mapped[str | None] = mapped_column(String(64), index=True)
    key_id: Mapped[int | None] = mapped_column(Integer)
    key_prefix: Mapped[str | None] = mapped_column(String(16))
    occurred_before: Mapped[datetime | None] = mapped_column(UtcDateTime)
    """Purge: the touchpoints that occurred before this time were its subject."""
    counts: Mapped[dict[str, int]] = mapped_column(JSON)
