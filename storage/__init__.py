"""Persistence: SQLAlchemy 2.0 models, Alembic migrations and small repository functions.

Repository functions take a Session and never commit; the gateway opens one transaction per
inbound message at the seam.
"""
