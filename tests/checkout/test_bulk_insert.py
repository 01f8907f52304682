"""``BulkInsert`` stores exactly what ``Connection.execute(insert(table), rows)`` stores."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import insert, select, text

from serving.db.bulk import BulkInsert
from serving.db.tables.idempotency import IdempotencyKey
from serving.db.tables.orders import Order, OrderTransition

NOW = datetime(2026, 11, 27, 12, 30, 45, 123456, tzinfo=UTC)


def _user_id(db, customer) -> int:
    from serving.db.tables import User

    with db.session() as s:
        return s.scalar(select(User.id).where(User.email == customer.email))


def _orders(prefix: str, now: datetime, user_id: int) -> list[dict]:
    return [
        {
            "id": f"{prefix}{i}",
            "user_id": user_id,
            "status": "reserved",
            "currency": "EUR",
            "subtotal_minor": 100 * i,
            "shipping_minor": 0 if i % 2 else 499,
            "total_minor": 100 * i + (0 if i % 2 else 499),
            "shipping_address": {"name": "Zoë", "lines": ["1 Main St", None], "n": i},
            "payment_method": "pm_x",
            "from_cart": bool(i % 2),
            "reserved_until": now + timedelta(minutes=15),
            "created_at": now,
            "updated_at": now + timedelta(microseconds=i),
        }
        for i in range(5)
    ]


def _keys(prefix: str, now: datetime, user_id: int) -> list[dict]:
    return [
        {
            "user_id": user_id,
            "key": f"{prefix}{i}",
            "request_hash": "h",
            "status": "done" if i else "in_flight",
            "order_id": None,
            "response_status": 409 if i else None,
            "response_body": {"title": "Out of stock", "detail": "é"} if i else None,
            "locked_until": now,
            "created_at": now,
            "expires_at": now + timedelta(hours=24),
        }
        for i in range(3)
    ]


def test_bulk_insert_stores_the_same_values_as_sqlalchemy(app, client, customer):

    db = app.state.components.db
    now = NOW
    uid = _user_id(db, customer)
    with db.engine.begin() as conn:
        conn.execute(insert(Order.__table__), _orders("a", now, uid))
        BulkInsert(Order.__table__).execute(conn, _orders("b", now, uid))
        conn.execute(insert(IdempotencyKey.__table__), _keys("a", now, uid))
        BulkInsert(IdempotencyKey.__table__).execute(conn, _keys("b", now, uid))
    with db.engine.connect() as conn:
        for table, key in (("orders", "id"), ("idempotency_keys", "key")):
            raw = conn.execute(text(f"SELECT * FROM {table} ORDER BY {key}")).all()
            by_name = {row._mapping[key]: tuple(row) for row in raw}
            pairs = [(k, "b" + k[1:]) for k in by_name if k.startswith("a")]
            assert pairs
            for a, b in pairs:
                stored_a = [v for v in by_name[a] if v != a]
                stored_b = [v for v in by_name[b] if v != b]
                assert stored_a == stored_b, (table, a)
        # JSON null and SQL NULL read back alike (None); the stored values must not differ.
        nulls = conn.execute(text("SELECT key, response_body IS NULL FROM idempotency_keys"))
        by_key = dict(nulls.all())
        assert not by_key["a0"] and not by_key["a1"]  # SQLAlchemy stores JSON null
        assert {k: v for k, v in by_key.items() if k[0] == "b"} == {
            "b" + k[1:]: v for k, v in by_key.items() if k[0] == "a"
        }
    # A table with an autoincrement key (no RETURNING in the bulk statement) and many rows.
    log = OrderTransition.__table__
    steps = [
        {
            "order_id": f"{prefix}{i % 5}",
            "from_status": None if i < 5 else "pending",
            "to_status": "pending" if i < 5 else "reserved",
            "reason": f"step {i} é",
            "created_at": now + timedelta(seconds=i),
        }
        for prefix in ("a", "b")
        for i in range(12)
    ]
    with db.engine.begin() as conn:
        conn.execute(insert(log), [r for r in steps if r["order_id"].startswith("a")])
        bound = BulkInsert(log).bind(conn.dialect, [r for r in steps if r["order_id"][0] == "b"])
        assert len(bound) == 12
        bound.run(conn)
    with db.engine.connect() as conn:
        stored = conn.execute(
            select(
                log.c.order_id, log.c.from_status, log.c.to_status, log.c.reason, log.c.created_at
            ).order_by(log.c.id)
        ).all()
    assert [tuple(r)[1:] for r in stored if r[0][0] == "a"] == [
        tuple(r)[1:] for r in stored if r[0][0] == "b"
    ]
    assert len(stored) == 24
    with db.session() as s:
        order = s.get(Order, "b1")
        assert order.shipping_address["name"] == "Zoë"
        assert order.from_cart is True
        assert order.updated_at == now + timedelta(microseconds=1)


def test_bulk_statement_updates_exactly_as_sqlalchemy(app, client, customer):
    """An UPDATE bound by ``BulkStatement`` (literals kept, JSON and dates processed) writes
    the same values as ``Connection.execute`` with the same rows, and counts its rows."""
    from serving.db.bulk import BulkStatement
    from serving.services.checkout import steps

    db = app.state.components.db
    now = NOW
    uid = _user_id(db, customer)
    with db.engine.begin() as conn:
        conn.execute(
            insert(IdempotencyKey.__table__),
            _keys("a", now, uid) + _keys("b", now, uid) + _keys("c", now, uid),
        )

    def done(prefix: str) -> list[dict]:
        return [
            {
                "b_user_id": uid,
                "b_key": f"{prefix}{i}",
                "b_status": 201,
                "b_body": {"id": f"o{i}", "note": "é", "items": [1, None]},
                "b_order_id": None,
            }
            for i in range(3)
        ] + [
            {
                "b_user_id": uid,
                "b_key": "missing",
                "b_status": 201,
                "b_body": {},
                "b_order_id": None,
            }
        ]

    with db.engine.begin() as conn:
        plain = conn.execute(steps.KEY_DONE, done("a"))
        bound = BulkStatement(steps.KEY_DONE).bind(conn.dialect, done("b"))
        assert len(bound) == 4
        result = bound.run(conn)
        assert result.rowcount == plain.rowcount == 3
        # All rows in one statement (PostgreSQL: a join with the rows as one JSON document).
        joined = BulkStatement(steps.KEY_DONE, one_statement=True).bind(conn.dialect, done("c"))
        assert joined.run(conn).rowcount == 3
        nobody = [dict(row, b_body=None) for row in done("c")]
        nobody[0]["b_key"] = "c0"
        nobody[1]["b_key"] = "b0"
    with db.engine.connect() as conn:
        rows = {
            row._mapping["key"]: tuple(v for v in row if v not in (row._mapping["key"],))
            for row in conn.execute(text("SELECT * FROM idempotency_keys ORDER BY key"))
        }
    for i in range(3):
        assert rows[f"a{i}"] == rows[f"b{i}"] == rows[f"c{i}"]
    # A None body is stored as JSON null by both, not as SQL NULL.
    with db.engine.begin() as conn:
        BulkStatement(steps.KEY_DONE, one_statement=True).bind(conn.dialect, [nobody[0]]).run(conn)
        conn.execute(steps.KEY_DONE, [nobody[1]])
        stored = dict(
            conn.execute(
                text(
                    "SELECT key, response_body IS NULL FROM idempotency_keys"
                    " WHERE key IN ('b0', 'c0')"
                )
            ).all()
        )
    assert not stored["b0"] and not stored["c0"]
    with db.session() as s:
        key = s.scalar(select(IdempotencyKey).where(IdempotencyKey.key == "b1"))
        assert key.status == "done"  # the literal of .values(status="done")
        assert key.response_body == {"id": "o1", "note": "é", "items": [1, None]}


def test_run_all_counts_rows_and_a_failure_rolls_back_every_statement(app, client, customer):
    """``run_all`` (one pipeline on PostgreSQL) gives each statement's row count, and a
    statement that fails takes the whole transaction back, the ones before it included."""
    import pytest

    from serving.db.bulk import BulkInsert, BulkStatement, run_all
    from serving.services.checkout import steps

    db = app.state.components.db
    now = NOW
    uid = _user_id(db, customer)
    keys = BulkInsert(IdempotencyKey.__table__)
    done = BulkStatement(steps.KEY_DONE, one_statement=True)

    def finish(prefix: str, n: int) -> list[dict]:
        return [
            {
                "b_user_id": uid,
                "b_key": f"{prefix}{i}",
                "b_status": 201,
                "b_body": {"i": i},
                "b_order_id": None,
            }
            for i in range(n)
        ]

    with db.engine.begin() as conn:
        d = conn.dialect
        counts = run_all(
            conn,
            [keys.bind(d, _keys("p", now, uid)), keys.bind(d, []), done.bind(d, finish("p", 5))],
        )
    assert counts == [3, 0, 3]  # 5 keys to finish, 3 of them exist

    with pytest.raises(Exception), db.engine.begin() as conn:  # noqa: B017 - driver's own error
        d = conn.dialect
        run_all(
            conn,
            [
                keys.bind(d, _keys("q", now, uid)),
                done.bind(d, finish("p", 1)),
                keys.bind(d, _keys("p", now, uid)),  # these keys exist: unique violation
            ],
        )
    with db.engine.connect() as conn:
        stored = {
            row[0]: row[1]
            for row in conn.execute(text("SELECT key, response_body FROM idempotency_keys"))
        }
    assert sorted(stored) == ["p0", "p1", "p2"]  # nothing of the failed transaction


def test_fetch_all_reads_what_sqlalchemy_reads(app, client, customer):
    """``fetch_all`` (one pipeline and ``= ANY(array)`` on PostgreSQL) returns the rows that
    ``Connection.execute`` returns, with their column names, for lists of any length."""
    from serving.db.bulk import fetch_all
    from serving.services.checkout import batch_rows
    from serving.services.infra import notifications

    db = app.state.components.db
    now = NOW
    uid = _user_id(db, customer)
    with db.engine.begin() as conn:
        conn.execute(insert(IdempotencyKey.__table__), _keys("k", now, uid))
    queries = [
        (batch_rows.ACTIVE_USERS, {"b_ids": [uid, 10**6, uid + 1]}),
        (batch_rows.ACTIVE_USERS, {"b_ids": [uid]}),
        (notifications.EMAILS_OF, {"b_user_ids": [uid, 10**6]}),
        (batch_rows.ACTIVE_USERS, {"b_ids": [10**6]}),
    ]
    with db.engine.connect() as conn:
        expected = [sorted(tuple(r) for r in conn.execute(q, p)) for q, p in queries]
    with db.engine.connect() as conn:
        got = fetch_all(conn, queries)
    assert [sorted(tuple(r) for r in rows) for rows in got] == expected
    assert expected[0] == [(uid,)] and expected[1] == [(uid,)] and expected[3] == []
    assert got[2][0].email == customer.email  # rows keep their column names


def test_known_key_pairs_match_user_and_key_together(app, client, customer, make_customer):
    """The batch's read of which (user, key) pairs exist: a key is known only for the user who
    sent it, and the read probes the primary key instead of scanning every key kept."""
    from serving.db.bulk import fetch_all
    from serving.services.checkout import idempotency

    db = app.state.components.db
    uid = _user_id(db, customer)
    other = _user_id(db, make_customer())
    with db.engine.begin() as conn:
        conn.execute(insert(IdempotencyKey.__table__), _keys("k", NOW, uid))
    pairs = [(uid, "k0"), (other, "k1"), (uid, "k2"), (uid, "nope"), (uid, "k0")]
    with db.engine.connect() as conn:
        statement, params = idempotency.known_pairs_query(conn.dialect.name, pairs)
        (rows,) = fetch_all(conn, [(statement, params)])
        assert sorted(set(map(tuple, rows))) == [(uid, "k0"), (uid, "k2")]
        assert fetch_all(conn, [idempotency.known_pairs_query(conn.dialect.name, [])]) == [[]]
        sql = str(statement.compile(dialect=conn.dialect))
        explain = "EXPLAIN " if not db.is_sqlite else "EXPLAIN QUERY PLAN "
        plan = " ".join(
            str(row[-1])
            for row in conn.exec_driver_sql(explain + sql.split(";")[0], _driver(conn, params))
        )
    assert "idempotency" in plan.lower() and "index" in plan.lower(), plan
    assert "Seq Scan on idempotency_keys" not in plan and "SCAN k" not in plan, plan


def _driver(conn, params: dict):
    """``params`` as the driver takes them for ``exec_driver_sql`` of the compiled text."""
    if conn.dialect.name == "sqlite":
        return (params["b_pairs"],)
    return params


def test_an_overdrawn_reservation_fails_the_batch_commit_sent_with_it(
    app, client, customer, make_product
):
    """The batch's reservation has no condition of its own (the stock was read locked): if
    it ever overdrew, the inventory's CHECK fails it, and the COMMIT that went out in the same
    round trip commits nothing, the statements before it included."""
    import pytest

    from serving.db.bulk import run_all
    from serving.db.tables import Inventory
    from serving.services.checkout import batch_rows

    db = app.state.components.db
    uid = _user_id(db, customer)
    pid = make_product(2)
    keys = BulkInsert(IdempotencyKey.__table__)
    with pytest.raises(Exception), db.engine.begin() as conn:  # noqa: B017 - driver's own error
        d = conn.dialect
        run_all(
            conn,
            [
                keys.bind(d, _keys("r", NOW, uid)),
                batch_rows.RESERVE_MANY.bind(
                    d, [{"b_product_id": pid, "b_quantity": 3, "b_now": NOW}]
                ),
            ],
            commit=True,
        )
    with db.session() as s:
        assert s.scalar(select(Inventory.reserved).where(Inventory.product_id == pid)) == 0
        assert s.scalars(select(IdempotencyKey.key)).all() == []


def test_one_statement_update_probes_the_index_for_each_row(app, client, customer, backend):
    """A one-statement UPDATE joins the rows of a JSON document that PostgreSQL takes for a
    hundred rows: left to itself it hashed them and scanned the whole table (payments,
    inventory), a cost that grows with the table and that PostgreSQL's CPU per order showed.
    The plan it gets probes the table's index once per row instead."""
    import pytest

    from serving.db.bulk import BulkStatement
    from serving.services.checkout import steps

    if backend != "postgresql":
        pytest.skip("one statement over a JSON document is PostgreSQL's plan")
    db = app.state.components.db
    bound = BulkStatement(steps.PAYMENT_SUCCEEDED, one_statement=True).bind(
        db.engine.dialect,
        [{"b_order_id": f"ord_{i}", "b_intent_id": f"pi_{i}", "b_now": NOW} for i in range(3)],
    )
    assert bound.setup is not None
    with db.engine.begin() as conn:
        conn.exec_driver_sql(bound.setup)
        plan = " ".join(
            row[0] for row in conn.exec_driver_sql("EXPLAIN " + bound.sql, bound.params)
        )
    assert "Index Scan using pk_payments on payments" in plan, plan
    assert "Seq Scan on payments" not in plan, plan


def test_types_json_cannot_carry_go_through_sqlalchemy():
    """Decimals (orjson refuses them), floats (NaN) and bytes stay off the JSON document:
    such an INSERT is left to SQLAlchemy, which adapts them itself."""
    from decimal import Decimal

    from sqlalchemy import Column, Integer, LargeBinary, MetaData, Numeric, String, Table
    from sqlalchemy.dialects.postgresql.psycopg import dialect as psycopg_dialect

    from serving.db.bulk import BulkInsert

    meta = MetaData()
    priced = Table(
        "priced", meta, Column("id", Integer, primary_key=True), Column("amount", Numeric)
    )
    blobs = Table(
        "blobs", meta, Column("id", Integer, primary_key=True), Column("data", LargeBinary)
    )
    named = Table("named", meta, Column("id", Integer, primary_key=True), Column("name", String))
    pg = psycopg_dialect()
    assert BulkInsert(priced).bind(pg, [{"id": 1, "amount": Decimal("0.1")}]).sql is None
    assert BulkInsert(blobs).bind(pg, [{"id": 1, "data": b"\0"}]).sql is None
    plain = BulkInsert(named).bind(pg, [{"id": 1, "name": "x"}])
    assert (
        "json_populate_recordset" in plain.sql and plain.params["_rows"] == '[{"id":1,"name":"x"}]'
    )
