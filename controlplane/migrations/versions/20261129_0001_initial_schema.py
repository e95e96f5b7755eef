"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-29 02:30:30.496931
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0001'
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:

    op.create_table('agencies',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('organisation_number', sa.String(length=10), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('kind', sa.Enum('municipality', 'region', 'agency', 'other', name='agency_kind', native_enum=False, create_constraint=True, length=32), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_agencies')),
    sa.UniqueConstraint('organisation_number', name=op.f('uq_agencies_organisation_number'))
    )
    op.create_table('audit_events',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('occurred_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('actor', sa.String(length=255), nullable=False),
    sa.Column('actor_name', sa.String(length=255), nullable=True),
    sa.Column('action', sa.String(length=64), nullable=False),
    sa.Column('subject_type', sa.String(length=64), nullable=False),
    sa.Column('subject_id', sa.String(length=255), nullable=False),
    sa.Column('before', sa.JSON(), nullable=True),
    sa.Column('after', sa.JSON(), nullable=True),
    sa.Column('prev_hash', sa.String(length=64), nullable=False),
    sa.Column('hash', sa.String(length=64), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_audit_events')),
    sa.UniqueConstraint('hash', name=op.f('uq_audit_events_hash')),
    sa.UniqueConstraint('prev_hash', name=op.f('uq_audit_events_prev_hash'))
    )
    with op.batch_alter_table('audit_events', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_audit_events_action'), ['action'], unique=False)

    op.create_table('gpu_capacity',
    sa.Column('gpu_model', sa.String(length=100), nullable=False),
    sa.Column('total', sa.Integer(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint('total >= 0', name=op.f('ck_gpu_capacity_total_not_negative')),
    sa.PrimaryKeyConstraint('gpu_model', name=op.f('pk_gpu_capacity'))
    )
    op.create_table('sandbox_requests',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('agency_id', sa.Integer(), nullable=False),
    sa.Column('requester_subject', sa.String(length=255), nullable=False),
    sa.Column('requester_name', sa.String(length=255), nullable=False),
    sa.Column('requester_email', sa.String(length=320), nullable=True),
    sa.Column('purpose', sa.Text(), nullable=False),
    sa.Column('legal_basis', sa.Text(), nullable=False),
    sa.Column('data_classification', sa.Enum('open', 'internal', 'confidential', name='data_classification', native_enum=False, create_constraint=True, length=32), nullable=False),
    sa.Column('ai_act_risk', sa.Enum('minimal', 'limited', 'high', 'unacceptable', name='ai_act_risk', native_enum=False, create_constraint=True, length=32), nullable=False),
    sa.Column('requested_quota', sa.JSON(), nullable=False),
    sa.Column('end_date', sa.Date(), nullable=False),
    sa.Column('status', sa.Enum('pending', 'approved', 'rejected', 'withdrawn', name='request_status', native_enum=False, create_constraint=True, length=32), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('decided_by', sa.String(length=255), nullable=True),
    sa.Column('decided_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('decision_comment', sa.Text(), nullable=True),
    sa.Column('granted_quota', sa.JSON(), nullable=True),
    sa.ForeignKeyConstraint(['agency_id'], ['agencies.id'], name=op.f('fk_sandbox_requests_agency_id_agencies'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_sandbox_requests'))
    )
    with op.batch_alter_table('sandbox_requests', schema=None) as batch_op:
        batch_op.create_index('ix_sandbox_requests_agency_status', ['agency_id', 'status'], unique=False)

    op.create_table('tenants',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('slug', sa.String(length=40), nullable=False),
    sa.Column('request_id', sa.Integer(), nullable=False),
    sa.Column('agency_id', sa.Integer(), nullable=False),
    sa.Column('status', sa.Enum('provisioning', 'ready', 'suspended', 'deleting', 'deleted', name='tenant_status', native_enum=False, create_constraint=True, length=32), nullable=False),
    sa.Column('gpus', sa.Integer(), nullable=False),
    sa.Column('gpu_model', sa.String(length=100), nullable=True),
    sa.Column('cpu', sa.Integer(), nullable=False),
    sa.Column('memory_gib', sa.Integer(), nullable=False),
    sa.Column('storage_gib', sa.Integer(), nullable=False),
    sa.Column('expires_on', sa.Date(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['agency_id'], ['agencies.id'], name=op.f('fk_tenants_agency_id_agencies'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['request_id'], ['sandbox_requests.id'], name=op.f('fk_tenants_request_id_sandbox_requests'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_tenants')),
    sa.UniqueConstraint('request_id', name=op.f('uq_tenants_request_id')),
    sa.UniqueConstraint('slug', name=op.f('uq_tenants_slug'))
    )
    with op.batch_alter_table('tenants', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_tenants_agency_id'), ['agency_id'], unique=False)
        batch_op.create_index('ix_tenants_gpu_model_status', ['gpu_model', 'status'], unique=False)




def downgrade() -> None:

    with op.batch_alter_table('tenants', schema=None) as batch_op:
        batch_op.drop_index('ix_tenants_gpu_model_status')
        batch_op.drop_index(batch_op.f('ix_tenants_agency_id'))

    op.drop_table('tenants')
    with op.batch_alter_table('sandbox_requests', schema=None) as batch_op:
        batch_op.drop_index('ix_sandbox_requests_agency_status')

    op.drop_table('sandbox_requests')
    op.drop_table('gpu_capacity')
    with op.batch_alter_table('audit_events', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_audit_events_action'))

    op.drop_table('audit_events')
    op.drop_table('agencies')

