"""merge the branches that started from 0003_merge: e-mail and security

Revision ID: 0005_merge
Revises: 0004_email, 0004_security
Create Date: 2026-11-23 10:00:00
"""

from collections.abc import Sequence

revision: str = '0005_merge'
down_revision: str | Sequence[str] | None = ('0004_email', '0004_security')
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
