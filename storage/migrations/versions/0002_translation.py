"""translation: machine translations of free-text answers into Chinese and English

Revision ID: 0002_translation
Revises: 0001
Create Date: 2026-11-22 10:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0002_translation'
down_revision: str | None = '0001'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('field_translations',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('conversation_id', sa.Integer(), nullable=False),
    sa.Column('application_id', sa.Integer(), nullable=True),
    sa.Column('field_key', sa.String(length=64), nullable=False),
    sa.Column('item', sa.Integer(), nullable=False),
    sa.Column('source_language', sa.String(length=16), nullable=False),
    sa.Column('target_language', sa.String(length=16), nullable=False),
    sa.Column('source_text', sa.Text(), nullable=False),
    sa.Column('source_sha256', sa.String(length=64), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('next_attempt_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('text', sa.Text(), nullable=True),
    sa.Column('engine', sa.String(length=64), nullable=True),
    sa.Column('package_version', sa.String(length=255), nullable=True),
    sa.Column('pivot', sa.String(length=16), nullable=True),
    sa.Column('machine_translation', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('translated_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['application_id'], ['applications.id'], ),
    sa.ForeignKeyConstraint(['conversation_id'], ['conversations.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('conversation_id', 'field_key', 'item', 'target_language', name='uq_field_translation')
    )
    with op.batch_alter_table('field_translations', schema=None) as batch_op:
        batch_op.create_index('ix_field_translations_application', ['application_id'], unique=False)
        batch_op.create_index('ix_field_translations_due', ['state', 'next_attempt_at'], unique=False)
        batch_op.create_index('ix_field_translations_text', ['source_language', 'target_language', 'source_sha256'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('field_translations', schema=None) as batch_op:
        batch_op.drop_index('ix_field_translations_text')
        batch_op.drop_index('ix_field_translations_due')
        batch_op.drop_index('ix_field_translations_application')

    op.drop_table('field_translations')
