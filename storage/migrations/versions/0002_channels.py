"""channels: blocked conversations, outbox delivery details, media download jobs

Revision ID: 0002_channels
Revises: 0001
Create Date: 2026-11-22 11:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0002_channels'
down_revision: str | None = '0001'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('conversations', schema=None) as batch_op:
        batch_op.add_column(sa.Column('blocked_at', sa.DateTime(timezone=True), nullable=True))

    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.add_column(sa.Column('kind', sa.String(length=16), server_default='reply', nullable=False))
        batch_op.add_column(sa.Column('parts_sent', sa.Integer(), server_default='0', nullable=False))
        batch_op.add_column(sa.Column('provider_message_id', sa.String(length=255), nullable=True))
        batch_op.add_column(sa.Column('delivery_mode', sa.String(length=80), nullable=True))
        batch_op.add_column(sa.Column('delivery_status', sa.String(length=16), nullable=True))
        batch_op.create_index('ix_outbox_provider_message', ['channel', 'provider_message_id'], unique=False)

    op.create_table('media_downloads',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('inbound_id', sa.Integer(), nullable=False),
    sa.Column('channel', sa.String(length=32), nullable=False),
    sa.Column('reference', sa.Text(), nullable=False),
    sa.Column('declared_media_type', sa.String(length=127), nullable=True),
    sa.Column('filename', sa.String(length=255), nullable=True),
    sa.Column('declared_size', sa.Integer(), nullable=True),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('next_attempt_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('failure', sa.String(length=16), nullable=True),
    sa.Column('attachment', sa.JSON(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['inbound_id'], ['inbound_messages.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('media_downloads', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_media_downloads_inbound_id'), ['inbound_id'], unique=False)
        batch_op.create_index('ix_media_downloads_pending', ['state', 'next_attempt_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('media_downloads', schema=None) as batch_op:
        batch_op.drop_index('ix_media_downloads_pending')
        batch_op.drop_index(batch_op.f('ix_media_downloads_inbound_id'))

    op.drop_table('media_downloads')
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.drop_index('ix_outbox_provider_message')
        batch_op.drop_column('delivery_status')
        batch_op.drop_column('delivery_mode')
        batch_op.drop_column('provider_message_id')
        batch_op.drop_column('parts_sent')
        batch_op.drop_column('kind')

    with op.batch_alter_table('conversations', schema=None) as batch_op:
        batch_op.drop_column('blocked_at')
