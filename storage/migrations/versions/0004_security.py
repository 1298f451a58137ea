"""security: seal identity data at rest, blind indexes, notice translations, file references

Revision ID: 0004_security
Revises: 0003_merge
Create Date: 2026-11-23 09:00:00

Every value that could identify an applicant is sealed (AES-256-GCM, bound to its table,
column and row; storage.crypto, storage.sealing): the senders and recipients, the conversation
state and hints, the application's fields, the raw messages both ways, file names, evidence
descriptions, the secretariat's messages and notes, translations and their errors. Lookups by
sender or by a provider's message id go through blind indexes (keyed HMAC) in clear columns.

Existing rows are sealed here, in the migration's transaction, with the keyring the gateway
hands over (`gateway db upgrade`, or any command that opens the database); a bare `alembic
upgrade` has no key and stops before changing anything. Evidence files are sealed right after
(storage.db.upgrade's caller, gateway.keys.seal_files). There is no way back: downgrading would
need the clear values, so it refuses; restore the backup taken before upgrading instead.
"""

import json
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import context, op

from storage.crypto import Keyring
from storage.sealing import KEYRING

revision: str = '0004_security'
down_revision: str | None = '0003_merge'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Columns whose type becomes TEXT on PostgreSQL (SQLite keeps its declared types: it stores the
# sealed text whatever the declaration, and changing a type there means rebuilding tables that
# other tables refer to).
RETYPED = {
    'conversations': ('sender', 'state', 'hints'),
    'applications': ('sender', 'fields'),
    'evidence': ('filename',),
    'inbound_messages': ('sender', 'attachments', 'hints'),
    'outbox': ('recipient', 'body'),
    'media_downloads': ('filename', 'attachment'),
}
# Every sealed column, by table.
SEALED = {
    'conversations': ('sender', 'state', 'hints'),
    'applications': ('sender', 'fields'),
    'evidence': ('filename', 'description'),
    'inbound_messages': ('sender', 'text', 'attachments', 'hints', 'error'),
    'outbox': ('recipient', 'body', 'last_error'),
    'media_downloads': ('filename', 'last_error', 'attachment'),
    'application_actions': ('message', 'note'),
    'field_translations': ('source_text', 'last_error', 'text'),
}
BATCH = 500


def upgrade() -> None:
    op.add_column('conversations', sa.Column('sender_index', sa.String(length=64), nullable=True))
    op.drop_index('ix_conversations_sender', table_name='conversations')
    op.create_index('ix_conversations_sender_index', 'conversations', ['channel', 'sender_index', 'id'], unique=False)
    op.add_column('inbound_messages', sa.Column('sender_index', sa.String(length=64), nullable=True))
    op.add_column('inbound_messages', sa.Column('provider_message_sealed', sa.Text(), nullable=True))
    op.create_index('ix_inbound_sender_index', 'inbound_messages', ['channel', 'sender_index', 'id'], unique=False)
    op.add_column('outbox', sa.Column('provider_message_sealed', sa.Text(), nullable=True))
    if op.get_bind().dialect.name == 'postgresql':
        for table, columns in RETYPED.items():
            for column in columns:
                op.alter_column(table, column, type_=sa.Text(), postgresql_using=f'{column}::text')

    op.create_table('notice_translations',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('outbox_id', sa.Integer(), nullable=False),
    sa.Column('application_id', sa.Integer(), nullable=True),
    sa.Column('follow_up_outbox_id', sa.Integer(), nullable=True),
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
    sa.ForeignKeyConstraint(['follow_up_outbox_id'], ['outbox.id'], ),
    sa.ForeignKeyConstraint(['outbox_id'], ['outbox.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('outbox_id')
    )
    op.create_index('ix_notice_translations_due', 'notice_translations', ['state', 'next_attempt_at'], unique=False)
    op.create_table('inbound_files',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('inbound_id', sa.Integer(), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.ForeignKeyConstraint(['inbound_id'], ['inbound_messages.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index(op.f('ix_inbound_files_inbound_id'), 'inbound_files', ['inbound_id'], unique=False)
    op.create_index(op.f('ix_inbound_files_sha256'), 'inbound_files', ['sha256'], unique=False)

    _seal_existing_rows()


def _seal_existing_rows() -> None:
    """Seal every clear value already stored, index what is looked up, record file references."""
    connection = op.get_bind()
    if not any(connection.execute(sa.text(f'SELECT 1 FROM {table} LIMIT 1')).first()
               for table in SEALED):
        return
    keyring = context.config.attributes.get(KEYRING)
    if not isinstance(keyring, Keyring):
        raise RuntimeError('0004_security seals the stored applicant data and needs the '
                           'encryption key: run `gateway db upgrade`, not alembic directly')
    for table, columns in SEALED.items():
        _seal_table(connection, keyring, table, columns)


def _seal_table(connection: Any, keyring: Keyring, table: str, columns: Sequence[str]) -> None:
    extra = {'conversations': ('channel',), 'inbound_messages': ('channel', 'provider_message_id'),
             'outbox': ('channel', 'provider_message_id'),
             'field_translations': ()}.get(table, ())
    names = ', '.join(('id', *extra, *columns))
    last = 0
    while True:
        rows = connection.execute(sa.text(
            f'SELECT {names} FROM {table} WHERE id > :last ORDER BY id LIMIT {BATCH}'),
            {'last': last}).mappings().all()
        if not rows:
            return
        for row in rows:
            values = {column: _seal(keyring, row[column], f'{table}.{column}#{row["id"]}')
                      for column in columns}
            values |= _indexes(keyring, table, row)
            assignments = ', '.join(f'{name} = :{name}' for name in values)
            connection.execute(sa.text(f'UPDATE {table} SET {assignments} WHERE id = :row_id'),
                               values | {'row_id': row['id']})
            if table == 'inbound_messages':
                _record_files(connection, row['id'], row['attachments'])
        last = rows[-1]['id']


def _seal(keyring: Keyring, value: Any, where: str) -> str | None:
    if value is None:
        return None
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return keyring.seal(text.encode('utf-8'), where)


def _indexes(keyring: Keyring, table: str, row: Any) -> dict[str, Any]:
    """The blind indexes a row needs, and its provider id sealed beside them."""
    found: dict[str, Any] = {}
    if table in ('conversations', 'inbound_messages'):
        found['sender_index'] = keyring.index('sender', f'{row["channel"]}\x00{row["sender"]}')
    if table in ('inbound_messages', 'outbox') and row['provider_message_id'] is not None:
        provider_id = row['provider_message_id']
        found['provider_message_id'] = keyring.index(
            'provider_message', f'{row["channel"]}\x00{provider_id}')
        found['provider_message_sealed'] = keyring.seal(
            provider_id.encode('utf-8'), f'{table}.provider_message_sealed#{row["id"]}')
    if table == 'field_translations':
        found['source_sha256'] = keyring.index('translation_text', row['source_text'])
    return found


def _record_files(connection: Any, inbound_id: int, attachments: Any) -> None:
    items = json.loads(attachments) if isinstance(attachments, str) else attachments or []
    for item in items:
        if isinstance(item, dict) and item.get('sha256'):
            connection.execute(sa.text('INSERT INTO inbound_files (inbound_id, sha256) '
                                       'VALUES (:inbound_id, :sha256)'),
                               {'inbound_id': inbound_id, 'sha256': item['sha256']})


def downgrade() -> None:
    raise RuntimeError('0004_security cannot be undone: the stored values are sealed and the '
                       'older schema needs them in clear; restore the backup taken before '
                       'the upgrade')
