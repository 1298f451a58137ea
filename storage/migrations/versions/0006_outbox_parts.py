"""outbox parts: every provider message a reply went out as, so a report on any part finds it

Revision ID: 0006_outbox_parts
Revises: 0005_merge
Create Date: 2026-11-24 09:00:00

A reply can go out as several provider messages (a long SMS in parts, a WhatsApp question as
text and buttons, a held message's template first); the outbox row kept only the last one's
id, so a delivery report on an earlier part found nothing and a failed part went unnoticed.
`outbox_parts` holds each part's id, sealed, with its blind index, and what the provider
reported on it; reports that come before their part is recorded wait there without a row.

Each row's known id (its last part, or a held message's template) becomes its first part
here, sealed and indexed again under the current key, so it needs the keyring the gateway
hands over (`gateway db upgrade`; a bare `alembic upgrade` stops before changing anything when
there is such a row). The outbox's own blind index is emptied and no longer written, but the
column and its index stay, so that instances of the version before, still running during a
rolling upgrade (docs/deployment.md: the schema only grows), keep writing and finding their
own rows; a later migration drops them. Downgrading puts each row's last part's index back.
"""

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import context, op

from storage.crypto import Keyring
from storage.sealing import KEYRING

revision: str = '0006_outbox_parts'
down_revision: str | None = '0005_merge'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BATCH = 500
# What the provider reported on the last part, as a part's status.
STATUSES = ('delivered', 'read', 'failed')


def upgrade() -> None:
    op.create_table('outbox_parts',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('outbox_id', sa.Integer(), nullable=True),
    sa.Column('channel', sa.String(length=32), nullable=False),
    sa.Column('part', sa.Integer(), nullable=True),
    sa.Column('provider_message_id', sa.String(length=255), nullable=False),
    sa.Column('provider_message_sealed', sa.Text(), nullable=False),
    sa.Column('delivery_status', sa.String(length=16), nullable=True),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('blocked', sa.Boolean(), nullable=False),
    sa.Column('sent_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('reported_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['outbox_id'], ['outbox.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_outbox_parts_outbox', 'outbox_parts', ['outbox_id', 'part'], unique=False)
    op.create_index('ix_outbox_parts_provider_message', 'outbox_parts', ['channel', 'provider_message_id'], unique=False)

    _parts_of_existing_rows()

    op.execute('UPDATE outbox SET provider_message_id = NULL')


def _parts_of_existing_rows() -> None:
    """Each outbox row's provider id becomes its part (numbered as the row counted it: a held
    message's template is part 0), sealed and indexed under the current key."""
    connection = op.get_bind()
    if connection.execute(sa.text('SELECT 1 FROM outbox WHERE provider_message_sealed IS NOT '
                                  'NULL LIMIT 1')).first() is None:
        return
    keyring = context.config.attributes.get(KEYRING)
    if not isinstance(keyring, Keyring):
        raise RuntimeError('0006_outbox_parts seals the providers\' message ids again and needs '
                           'the encryption key: run `gateway db upgrade`, not alembic directly')
    last = 0
    while True:
        rows = connection.execute(sa.text(
            'SELECT id, channel, parts_sent, provider_message_sealed, delivery_status, sent_at '
            'FROM outbox WHERE provider_message_sealed IS NOT NULL AND id > :last '
            f'ORDER BY id LIMIT {BATCH}'), {'last': last}).mappings().all()
        if not rows:
            break
        connection.execute(sa.text(
            'INSERT INTO outbox_parts (id, outbox_id, channel, part, provider_message_id, '
            'provider_message_sealed, delivery_status, blocked, sent_at) VALUES (:id, :id, '
            ':channel, :part, :index, :sealed, :status, :blocked, :sent_at)'),
            [_part(keyring, row) for row in rows])
        last = rows[-1]['id']
    if connection.dialect.name == 'postgresql':  # the ids were given: the sequence goes past
        connection.execute(sa.text("SELECT setval(pg_get_serial_sequence('outbox_parts', 'id'), "
                                   "(SELECT max(id) FROM outbox_parts))"))


def _part(keyring: Keyring, row: Any) -> dict[str, Any]:
    """The part of one outbox row, with the row's id (one part each, so the ids are free)."""
    provider_id = keyring.unseal(row['provider_message_sealed'],
                                 f'outbox.provider_message_sealed#{row["id"]}').decode('utf-8')
    return {'id': row['id'], 'channel': row['channel'], 'part': row['parts_sent'],
            'index': keyring.index('provider_message', f'{row["channel"]}\x00{provider_id}'),
            'sealed': keyring.seal(provider_id.encode('utf-8'),
                                   f'outbox_parts.provider_message_sealed#{row["id"]}'),
            'status': row['delivery_status'] if row['delivery_status'] in STATUSES else None,
            'blocked': False, 'sent_at': row['sent_at']}


def downgrade() -> None:
    op.execute('UPDATE outbox SET provider_message_id = (SELECT p.provider_message_id FROM '
               'outbox_parts p WHERE p.outbox_id = outbox.id ORDER BY p.part DESC, p.id DESC '
               'LIMIT 1)')
    op.drop_index('ix_outbox_parts_provider_message', table_name='outbox_parts')
    op.drop_index('ix_outbox_parts_outbox', table_name='outbox_parts')
    op.drop_table('outbox_parts')
