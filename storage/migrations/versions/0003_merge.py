"""merge the branches that started from 0001: secretariat, translation and channels

Revision ID: 0003_merge
Revises: 0002_channels, 0002_secretariat, 0002_translation
Create Date: 2026-11-22 12:00:00
"""

from collections.abc import Sequence

revision: str = '0003_merge'
down_revision: str | Sequence[str] | None = ('0002_channels', '0002_secretariat', '0002_translation')
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
