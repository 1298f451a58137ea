"""Sealed columns: models read and write clear values; the database only ever holds them sealed.

A model declares the column that holds the sealed text (type `SealedText`, which refuses to
write anything that is not sealed) and a `Sealed` attribute in front of it:

    sender_sealed: Mapped[str] = mapped_column("sender", SealedText())
    sender = Sealed[str]("sender_sealed", index=SENDER_INDEX)

Reading `conversation.sender` opens the sealed text with the keyring of the session that loaded
the row (once; the clear value is kept on the object). Writing it keeps the clear value and
marks the column; just before the flush every marked value is sealed under the current key,
bound to its table, column and row id. A new row gets its id before it is inserted (the
sequence on PostgreSQL; the next id under SQLite's write lock), so even its first values are
bound to it. A `Sealed` attribute with an `index` also writes the value's blind index to a clear
column, which is what queries compare (`Conversation.sender == x` raises; use the index).

The keyring rides on the session: `session.info[KEYRING]` (storage.db.session_factory).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import cache
from typing import Any, Generic, TypeVar, overload

from sqlalchemy import Select, Table, event, func, inspect, select, text
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import Session, object_session
from sqlalchemy.types import Text, TypeDecorator

from storage.crypto import TOKEN_PREFIX, Keyring

T = TypeVar("T")
KEYRING = "keyring"
_OPENED_WITH = "_sealed_keyring"
_CLEAR = "_sealed_clear_"
# What a sealed column holds between setting its clear value and the flush that seals it.
PENDING = "\x00pending"


class SealedText(TypeDecorator[str]):
    """Text that is either NULL or sealed; anything else is refused before it is written."""

    impl = Text
    cache_ok = True

    def process_bind_param(self, value: str | None, dialect: Dialect) -> str | None:
        if value is None or value.startswith(TOKEN_PREFIX):
            return value
        raise ValueError("refusing to write a value that is not sealed into a sealed column")


@dataclass(frozen=True)
class BlindIndex:
    """Where a sealed value's blind index goes, and what it is computed over."""

    column: str  # the attribute of the clear column holding the index
    purpose: str  # "sender", "provider_message": indexes of one purpose compare across tables
    of: Callable[[Any, Any], str]  # (row, clear value) -> the text that is indexed


def channel_and(row: Any, value: Any) -> str:
    """A channel and a value on it (a sender, a provider's message id) as one indexed text."""
    return f"{row.channel}\x00{value}"


class Sealed(Generic[T]):
    """A clear attribute kept sealed in the mapped column named `column`."""

    def __init__(self, column: str, json_value: bool = False,
                 index: BlindIndex | None = None) -> None:
        self.column = column
        self.json_value = json_value
        self.index = index
        self.name = ""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name
        owner.__sealed__ = {**getattr(owner, "__sealed__", {}), name: self}  # type: ignore[attr-defined]

    @overload
    def __get__(self, obj: None, owner: type) -> Sealed[T]: ...
    @overload
    def __get__(self, obj: object, owner: type) -> T: ...

    def __get__(self, obj: object | None, owner: type) -> Sealed[T] | T:
        if obj is None:
            return self
        clear = _CLEAR + self.name
        if clear not in obj.__dict__:
            token = getattr(obj, self.column)  # may load the column (and reset the cache)
            if clear not in obj.__dict__:
                obj.__dict__[clear] = self._open(obj, token)
        value: T = obj.__dict__[clear]
        return value

    def __set__(self, obj: object, value: T) -> None:
        obj.__dict__[_CLEAR + self.name] = value
        setattr(obj, self.column, PENDING)

    def __eq__(self, other: object) -> bool:
        raise TypeError(f"{self.name} is sealed: compare its blind index instead")

    __hash__ = object.__hash__

    def context(self, obj: object) -> str:
        """Where a value belongs: table, column and row, as the associated data says."""
        table, column = column_of(type(obj), self.column)
        return f"{table}.{column}#{obj.id}"  # type: ignore[attr-defined]

    def encode(self, value: Any) -> bytes:
        if self.json_value:
            return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        return str(value).encode("utf-8")

    def decode(self, raw: bytes) -> Any:
        return json.loads(raw) if self.json_value else raw.decode("utf-8")

    def _open(self, obj: object, token: str | None) -> Any:
        if token is None:
            return None
        keyring = obj.__dict__.get(_OPENED_WITH) or keyring_of(object_session(obj))
        return self.decode(keyring.unseal(token, self.context(obj)))

    def seal(self, obj: object, keyring: Keyring) -> None:
        """Seal the clear value into the column (and index it)."""
        value = obj.__dict__[_CLEAR + self.name]
        token = None if value is None else keyring.seal(self.encode(value), self.context(obj))
        setattr(obj, self.column, token)
        if self.index is not None:
            setattr(obj, self.index.column, None if value is None else keyring.index(
                self.index.purpose, self.index.of(obj, value)))


def sealed_attributes(model: type) -> dict[str, Sealed[Any]]:
    """The sealed attributes of a model (empty for a model without any)."""
    found: dict[str, Sealed[Any]] = getattr(model, "__sealed__", {})
    return found


_columns: dict[tuple[type, str], tuple[str, str]] = {}


def column_of(model: type, attribute: str) -> tuple[str, str]:
    """(table name, column name) of a mapped attribute."""
    key = (model, attribute)
    if key not in _columns:
        column: Any = inspect(model).attrs[attribute].columns[0]  # type: ignore[union-attr]
        _columns[key] = (column.table.name, column.name)
    return _columns[key]


def keyring_of(session: Session | None) -> Keyring:
    """The keyring a session carries; an error naming the fix when it carries none."""
    keyring = session.info.get(KEYRING) if session is not None else None
    if not isinstance(keyring, Keyring):
        raise RuntimeError("this session has no encryption keyring: open sessions with "
                           "storage.db.session_factory(engine, keyring)")
    return keyring


# -- the ORM events ----------------------------------------------------------------------------


def _pending(obj: object) -> list[Sealed[Any]]:
    return [attribute for attribute in sealed_attributes(type(obj)).values()
            if obj.__dict__.get(attribute.column) == PENDING]


@event.listens_for(Session, "before_flush")
def _seal_before_flush(session: Session, flush_context: Any, instances: Any) -> None:
    """Give new rows of sealed models their ids, then seal every value set since the last
    flush."""
    new = sorted((obj for obj in session.new if sealed_attributes(type(obj))),
                 key=lambda obj: inspect(obj).insert_order)
    changed = [obj for obj in (*new, *session.dirty) if _pending(obj)]
    if not new and not changed:
        return
    keyring = keyring_of(session)
    unnumbered: dict[Table, list[Any]] = {}
    for obj in new:
        if obj.id is None:
            unnumbered.setdefault(type(obj).__table__, []).append(obj)
    for table, objects in unnumbered.items():
        for obj, row_id in zip(objects, allocate_ids(session, table, len(objects)),
                               strict=True):
            obj.id = row_id
    for obj in dict.fromkeys(changed):
        for attribute in _pending(obj):
            attribute.seal(obj, keyring)
        obj.__dict__[_OPENED_WITH] = keyring


def allocate_ids(session: Session, table: Table, count: int) -> list[int]:
    """Ids for rows about to be inserted: from the table's sequence on PostgreSQL; on SQLite
    the next ones, safe because the transaction holds the write lock (BEGIN IMMEDIATE)."""
    if session.get_bind().dialect.name == "postgresql":
        rows = session.execute(text(
            "SELECT nextval(pg_get_serial_sequence(:table, 'id')) FROM generate_series(1, :n)"),
            {"table": table.name, "n": count})
        return sorted(int(row[0]) for row in rows)
    # The last id handed out is remembered for the rest of the transaction (no other
    # connection can insert meanwhile), so a transaction that processes many messages asks
    # for the table's largest id once.
    transaction = session.get_transaction()
    handed: tuple[Any, dict[str, int]] | None = session.info.get(_HANDED_OUT)
    if handed is None or handed[0] is not transaction:
        handed = session.info[_HANDED_OUT] = (transaction, {})
    last = handed[1].get(table.name)
    if last is None:
        last = session.execute(_last_id(table)).scalar() or 0
    handed[1][table.name] = last + count
    return list(range(last + 1, last + count + 1))


# session.info key: (the transaction, {table name: the last id it handed out}) on SQLite.
_HANDED_OUT = "gateway_ids_handed_out"


@cache
def _last_id(table: Table) -> Select[tuple[Any]]:
    """SELECT max(id), built once per table (it runs for every row stored)."""
    return select(func.max(table.c.id))


def _forget(obj: object, attributes: Iterable[str] | None) -> None:
    """Drop kept clear values whose sealed columns were (re)loaded or expired."""
    for name, attribute in sealed_attributes(type(obj)).items():
        if attributes is None or attribute.column in attributes:
            obj.__dict__.pop(_CLEAR + name, None)


def _on_load(obj: object, context: Any) -> None:
    if sealed_attributes(type(obj)):
        obj.__dict__[_OPENED_WITH] = keyring_of(context.session)
        _forget(obj, None)


def _on_refresh(obj: object, context: Any, attributes: Iterable[str] | None) -> None:
    if sealed_attributes(type(obj)):
        if context is not None:  # None: an UPDATE statement set the columns on the object
            obj.__dict__[_OPENED_WITH] = keyring_of(context.session)
        _forget(obj, attributes)


def _on_expire(obj: object, attributes: Iterable[str] | None) -> None:
    _forget(obj, attributes)


def listen(base: type) -> None:
    """Keep the clear values of `base`'s models in step with their rows."""
    event.listen(base, "load", _on_load, propagate=True)
    event.listen(base, "refresh", _on_refresh, propagate=True)
    event.listen(base, "expire", _on_expire, propagate=True)
