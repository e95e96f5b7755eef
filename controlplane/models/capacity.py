"""GPU capacity: how many GPUs of each model the cluster offers."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, String, true
from sqlalchemy.orm import Mapped, mapped_column

from controlplane.models.base import Base, UtcDateTime, utcnow


class GpuCapacity(Base):
    __tablename__ = "gpu_capacity"
    __table_args__ = (CheckConstraint("total >= 0", name="total_not_negative"),)

    gpu_model: Mapped[str] = mapped_column(String(100), primary_key=True)
    total: Mapped[int]
    # True: an admin set ``total`` and the node sync leaves it alone; False: it follows the
    # nodes' allocatable GPUs. Rows from before the sync existed were set by admins.
    admin_override: Mapped[bool] = mapped_column(server_default=true())
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow, onupdate=utcnow)
