"""Metered usage: pod and volume intervals as the cluster reported them, and daily rollups.

``usage_intervals`` holds one row per pod (keyed by its UID): what it requested and when it ran.
A row is written when the collector first sees the pod running, with ``ended_at`` NULL while it
runs (an open interval, carried forward); ``ended_at`` is set exactly once, by a conditional
UPDATE, when the pod finishes or disappears. ``rolled_up_to`` says up to which instant the
interval has already been added into ``usage_daily``: folding a segment and advancing the marker
happen in one transaction, so a restart neither loses nor double-counts. ``storage_intervals`` is
the same for PersistentVolumeClaims.

``usage_daily`` is one row per tenant, calendar day (in the report time zone) and GPU model; the
row with ``gpu_model = ""`` holds usage of pods without GPUs and all storage. CPU, memory and
storage totals are the sums over every row of the day.

``usage_monthly`` is the same usage summed per tenant, month, price segment and GPU model, kept
by the same upsert that adds to ``usage_daily`` (so in the same transaction): the monthly cost
report reads a few rows per tenant instead of a month of days. The price segment is the
``effective_from`` of the price list in force on the usage day (``NO_PRICE_LIST`` when none was),
so a month with a price change keeps each day's usage with the prices then in force.
``first_day``/``last_day`` bound the days summed into the row; the report uses them to check
that the segment still matches the price lists it prices with.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Date, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from controlplane.models.base import Base, UtcDateTime


class UsageInterval(Base):
    __tablename__ = "usage_intervals"
    __table_args__ = (
        Index("ix_usage_intervals_tenant_started", "tenant_id", "started_at"),
        # Open or not fully folded intervals: the collector's and the reports' working set.
        Index("ix_usage_intervals_ended_at", "ended_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    pod_uid: Mapped[str] = mapped_column(String(64), unique=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="RESTRICT"))
    namespace: Mapped[str] = mapped_column(String(63))
    pod_name: Mapped[str] = mapped_column(String(253))
    node_name: Mapped[str] = mapped_column(String(253))
    # Value of the node's nvidia.com/gpu.product label; "" when the pod requested no GPU.
    gpu_model: Mapped[str] = mapped_column(String(100))
    gpus: Mapped[int]
    cpu_cores: Mapped[float]
    memory_gib: Mapped[float]
    started_at: Mapped[datetime] = mapped_column(UtcDateTime())
    # NULL while the pod runs (open interval).
    ended_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    # Where ``ended_at`` came from: "finished" (container finishedAt), "deleted" (deletion
    # observed), "last-seen" (vanished while the collector was down).
    end_source: Mapped[str | None] = mapped_column(String(16))
    # Last time the collector saw the pod running (bounds the end of pods that vanish unseen).
    last_seen_at: Mapped[datetime] = mapped_column(UtcDateTime())
    # Usage before this instant is already in usage_daily; NULL = nothing folded yet.
    rolled_up_to: Mapped[datetime | None] = mapped_column(UtcDateTime())


class StorageInterval(Base):
    __tablename__ = "storage_intervals"
    __table_args__ = (
        Index("ix_storage_intervals_tenant_started", "tenant_id", "started_at"),
        Index("ix_storage_intervals_ended_at", "ended_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    pvc_uid: Mapped[str] = mapped_column(String(64), unique=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="RESTRICT"))
    namespace: Mapped[str] = mapped_column(String(63))
    name: Mapped[str] = mapped_column(String(253))
    size_gib: Mapped[float]
    started_at: Mapped[datetime] = mapped_column(UtcDateTime())
    ended_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    last_seen_at: Mapped[datetime] = mapped_column(UtcDateTime())
    rolled_up_to: Mapped[datetime | None] = mapped_column(UtcDateTime())


# price_from of usage on days no price list covers (before the first version).
NO_PRICE_LIST = date(1, 1, 1)


class UsageDaily(Base):
    __tablename__ = "usage_daily"
    __table_args__ = (
        UniqueConstraint("tenant_id", "day", "gpu_model", name="uq_usage_daily_tenant_day_model"),
        Index("ix_usage_daily_day", "day"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="RESTRICT"))
    # Calendar day in SANDLADA_REPORT_TIMEZONE (default Europe/Stockholm).
    day: Mapped[date] = mapped_column(Date)
    gpu_model: Mapped[str] = mapped_column(String(100))
    gpu_seconds: Mapped[float] = mapped_column(default=0.0)
    cpu_core_seconds: Mapped[float] = mapped_column(default=0.0)
    memory_gib_seconds: Mapped[float] = mapped_column(default=0.0)
    storage_gib_seconds: Mapped[float] = mapped_column(default=0.0)


class UsageMonthly(Base):
    __tablename__ = "usage_monthly"
    __table_args__ = (
        UniqueConstraint(
            "tenant_id", "month", "price_from", "gpu_model", name="uq_usage_monthly_segment"
        ),
        Index("ix_usage_monthly_month", "month"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="RESTRICT"))
    # First day of the calendar month (report time zone).
    month: Mapped[date] = mapped_column(Date)
    # effective_from of the price list in force on the usage days; NO_PRICE_LIST when none.
    price_from: Mapped[date] = mapped_column(Date)
    gpu_model: Mapped[str] = mapped_column(String(100))
    gpu_seconds: Mapped[float] = mapped_column(default=0.0)
    cpu_core_seconds: Mapped[float] = mapped_column(default=0.0)
    memory_gib_seconds: Mapped[float] = mapped_column(default=0.0)
    storage_gib_seconds: Mapped[float] = mapped_column(default=0.0)
    # The earliest and latest usage day summed into this row.
    first_day: Mapped[date] = mapped_column(Date)
    last_day: Mapped[date] = mapped_column(Date)
