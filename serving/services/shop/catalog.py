"""Catalog: categories and products, their listing with filters and keyset pagination.

Reads use SQLAlchemy Core and build plain dicts: product reads are the hottest path of the
shop and ORM object construction would cost more than the query itself.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Integer, and_, bindparam, delete, exists, or_, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, aliased

from serving.core.clock import utcnow
from serving.core.errors import BadRequest, Conflict, NotFound
from serving.db.tables import Category, Inventory, Product, ProductAttribute
from serving.services.shop import inventory
from serving.services.shop.pagination import decode_cursor, encode_cursor

#: Reads accept a Session or a bare Connection (faster on the hottest paths).
Reader = Session | Connection

# ---------------------------------------------------------------- categories


def category_dict(c: Category) -> dict[str, Any]:
    return {
        "id": c.id,
        "parent_id": c.parent_id,
        "slug": c.slug,
        "name": c.name,
        "path": c.path,
        "depth": c.depth,
    }


def list_categories(session: Session) -> list[dict[str, Any]]:
    return [category_dict(c) for c in session.scalars(select(Category).order_by(Category.path))]


def create_category(
    session: Session, *, slug: str, name: str, parent_id: int | None
) -> dict[str, Any]:
    parent = None
    if parent_id is not None:
        parent = session.get(Category, parent_id)
        if parent is None:
            raise NotFound("Category", parent_id)
    now = utcnow()
    category = Category(
        slug=slug,
        name=name,
        parent_id=parent_id,
        path=f"{parent.path}/{slug}" if parent else slug,
        depth=parent.depth + 1 if parent else 0,
        created_at=now,
        updated_at=now,
    )
    session.add(category)
    try:
        session.commit()
    except IntegrityError as exc:
        session.rollback()
        raise Conflict(f"A category with slug {slug!r} already exists") from exc
    return category_dict(category)


def update_category(session: Session, *, category_id: int, name: str | None) -> dict[str, Any]:
    category = session.get(Category, category_id)
    if category is None:
        raise NotFound("Category", category_id)
    if name is not None:
        category.name = name
        category.updated_at = utcnow()
    session.commit()
    return category_dict(category)


def category_and_descendant_ids(session: Reader, key: str) -> list[int]:
    """Ids of the category named by id or slug and all categories below it."""
    column = Category.id if key.isdigit() else Category.slug
    value: int | str = int(key) if key.isdigit() else key
    path = session.scalar(select(Category.path).where(column == value))
    if path is None:
        raise NotFound("Category", key)
    return list(
        session.scalars(
            select(Category.id).where(or_(Category.path == path, Category.path.like(path + "/%")))
        )
    )


# ---------------------------------------------------------------- products: reads

_PRODUCT_COLUMNS = (
    Product.id,
    Product.sku,
    Product.title,
    Product.description,
    Product.brand,
    Product.price_minor,
    Product.currency,
    Product.attributes,
    Product.image_urls,
    Product.status,
    Product.rating_avg,
    Product.rating_count,
    Product.created_at,
    Product.updated_at,
    Category.id.label("category_id"),
    Category.slug.label("category_slug"),
    Category.name.label("category_name"),
    Category.path.label("category_path"),
    Inventory.on_hand,
    Inventory.reserved,
)


def _product_select():
    return (
        select(*_PRODUCT_COLUMNS)
        .join(Category, Category.id == Product.category_id)
        .join(Inventory, Inventory.product_id == Product.id)
    )


def product_row_to_dict(row: Any) -> dict[str, Any]:
    return {
        "id": row.id,
        "sku": row.sku,
        "title": row.title,
        "description": row.description,
        "brand": row.brand,
        "category": {
            "id": row.category_id,
            "slug": row.category_slug,
            "name": row.category_name,
            "path": row.category_path,
        },
        "price_minor": row.price_minor,
        "currency": row.currency,
        "attributes": row.attributes or {},
        "image_urls": row.image_urls or [],
        "status": row.status,
        "rating_avg": round(float(row.rating_avg or 0.0), 3),
        "rating_count": row.rating_count,
        "stock": {
            "on_hand": row.on_hand,
            "reserved": row.reserved,
            "available": row.on_hand - row.reserved,
        },
        "created_at": row.created_at,
        "updated_at": row.updated_at,
    }


#: Built once: constructing the joined select per call cost more than running it.
_PRODUCT_BY_ID = _product_select().where(Product.id == bindparam("product_id"))


def get_product(session: Reader, product_id: int) -> dict[str, Any]:
    row = session.execute(_PRODUCT_BY_ID, {"product_id": product_id}).first()
    if row is None:
        raise NotFound("Product", product_id)
    return product_row_to_dict(row)


def get_products(session: Reader, product_ids: list[int]) -> dict[int, dict[str, Any]]:
    """Several products by id (missing ids are simply absent)."""
    if not product_ids:
        return {}
    rows = session.execute(_product_select().where(Product.id.in_(product_ids)))
    return {row.id: product_row_to_dict(row) for row in rows}


SORTS = {
    "id": (Product.id, False),
    "newest": (Product.created_at, True),
    "price_asc": (Product.price_minor, False),
    "price_desc": (Product.price_minor, True),
    "rating": (Product.rating_avg, True),
}


@dataclass
class ProductQuery:
    category: str | None = None
    brands: list[str] = field(default_factory=list)
    price_min: int | None = None
    price_max: int | None = None
    attributes: list[str] = field(default_factory=list)  # "key:value"
    in_stock: bool | None = None
    sort: str = "id"
    include_archived: bool = False
    limit: int = 24
    cursor: str | None = None


def _parse_attribute_filters(raw: list[str]) -> dict[str, list[str]]:
    filters: dict[str, list[str]] = {}
    for item in raw:
        key, sep, value = item.partition(":")
        if not sep or not key or not value:
            raise BadRequest(f"Attribute filter {item!r} must look like key:value")
        filters.setdefault(key.strip(), []).append(value.strip())
    return filters


def list_products(session: Reader, q: ProductQuery) -> tuple[list[dict[str, Any]], str | None]:
    """One page of products and the cursor of the next page (None on the last page)."""
    if q.sort not in SORTS:
        raise BadRequest(f"Unknown sort {q.sort!r}; use one of {', '.join(SORTS)}")
    column, _ = SORTS[q.sort]
    params: dict[str, Any] = {"limit": q.limit + 1}
    category_kind = None
    if q.category:
        category_kind = "id" if q.category.isdigit() else "slug"
        params["category"] = int(q.category) if q.category.isdigit() else q.category
    if q.brands:
        params["brands"] = list(q.brands)
    if q.price_min is not None:
        params["price_min"] = q.price_min
    if q.price_max is not None:
        params["price_max"] = q.price_max
    attribute_filters = _parse_attribute_filters(q.attributes)
    for i, (key, values) in enumerate(attribute_filters.items()):
        params[f"attr_key_{i}"] = key
        params[f"attr_values_{i}"] = values
    cursor_kind = None
    if q.cursor:
        if column is Product.id:
            cursor_kind = "id"
            (params["last_id"],) = decode_cursor(q.cursor, 1)
        else:
            cursor_kind = "value"
            last_value, params["last_id"] = decode_cursor(q.cursor, 2)
            if column is Product.created_at:
                try:
                    last_value = datetime.fromisoformat(str(last_value))
                except ValueError as exc:
                    raise BadRequest("The cursor is not valid") from exc
            params["last_value"] = last_value
    shape = _ListingShape(
        sort=q.sort,
        include_archived=q.include_archived,
        category=category_kind,
        brands=bool(q.brands),
        price_min=q.price_min is not None,
        price_max=q.price_max is not None,
        in_stock=q.in_stock,
        attributes=len(attribute_filters),
        cursor=cursor_kind,
    )
    rows = session.execute(_listing_statement(shape), params).all()
    if not rows and q.category:
        category_and_descendant_ids(session, q.category)  # 404 for a category that is not there
    items = [product_row_to_dict(r) for r in rows[: q.limit]]
    next_cursor = None
    if len(rows) > q.limit:
        last = rows[q.limit - 1]
        if column is Product.id:
            next_cursor = encode_cursor(last.id)
        else:
            value = getattr(last, column.key)
            if isinstance(value, datetime):
                value = value.isoformat()
            next_cursor = encode_cursor(value, last.id)
    return items, next_cursor


@dataclass(frozen=True)
class _ListingShape:
    """Which filters a listing uses (not their values): its SQL depends on nothing else."""

    sort: str
    include_archived: bool
    category: str | None  # "id", "slug" or None
    brands: bool
    price_min: bool
    price_max: bool
    in_stock: bool | None
    attributes: int  # how many attribute keys are filtered on
    cursor: str | None  # "id", "value" or None


#: Listing statements by shape, built once with bound parameters. Building the joined select,
#: its where-clauses and its cache key cost more than running it on SQLite; a handful of shapes
#: cover what clients send (the cap only guards against unusual filter combinations).
_LISTING_STATEMENTS: dict[_ListingShape, Any] = {}
_LISTING_STATEMENTS_MAX = 512
_PARENT_CATEGORY = aliased(Category)


def _listing_statement(shape: _ListingShape):
    statement = _LISTING_STATEMENTS.get(shape)
    if statement is None:
        statement = _build_listing_statement(shape)
        if len(_LISTING_STATEMENTS) < _LISTING_STATEMENTS_MAX:
            _LISTING_STATEMENTS[shape] = statement
    return statement


def _build_listing_statement(shape: _ListingShape):
    column, descending = SORTS[shape.sort]
    query = _product_select()
    if not shape.include_archived:
        query = query.where(Product.status == "active")
    if shape.category is not None:
        parent = _PARENT_CATEGORY
        key = parent.id if shape.category == "id" else parent.slug
        subtree = (
            select(Category.id)
            .join(
                parent,
                or_(Category.path == parent.path, Category.path.like(parent.path.concat("/%"))),
            )
            .where(key == bindparam("category"))
        )
        query = query.where(Product.category_id.in_(subtree))
    if shape.brands:
        query = query.where(Product.brand.in_(bindparam("brands", expanding=True)))
    if shape.price_min:
        query = query.where(Product.price_minor >= bindparam("price_min"))
    if shape.price_max:
        query = query.where(Product.price_minor <= bindparam("price_max"))
    if shape.in_stock is True:
        query = query.where(Inventory.on_hand - Inventory.reserved > 0)
    elif shape.in_stock is False:
        query = query.where(Inventory.on_hand - Inventory.reserved <= 0)
    for i in range(shape.attributes):
        query = query.where(
            exists().where(
                ProductAttribute.product_id == Product.id,
                ProductAttribute.key == bindparam(f"attr_key_{i}"),
                ProductAttribute.value_text.in_(bindparam(f"attr_values_{i}", expanding=True)),
            )
        )
    if shape.cursor == "id":
        query = query.where(Product.id > bindparam("last_id"))
    elif shape.cursor == "value":
        last_value, last_id = bindparam("last_value"), bindparam("last_id")
        beyond = column < last_value if descending else column > last_value
        query = query.where(or_(beyond, and_(column == last_value, Product.id > last_id)))
    order = [column.desc() if descending else column.asc()]
    if column is not Product.id:
        order.append(Product.id.asc())
    return query.order_by(*order).limit(bindparam("limit", type_=Integer))


# ---------------------------------------------------------------- products: writes


def _attribute_rows(product_id: int, attributes: dict[str, Any]) -> list[ProductAttribute]:
    rows = []
    for key, value in attributes.items():
        if isinstance(value, bool):
            kind, text, num = "bool", "true" if value else "false", float(value)
        elif isinstance(value, int):
            kind, text, num = "int", str(value), float(value)
        elif isinstance(value, float):
            kind, text, num = "float", repr(value), value
        else:
            kind, text, num = "str", str(value), None
        rows.append(
            ProductAttribute(
                product_id=product_id, key=key, kind=kind, value_text=text, value_num=num
            )
        )
    return rows


def _insert_product(session: Session, *, data: dict[str, Any], actor_user_id: int) -> int:
    """Insert one product with its attributes and stock row; no commit."""
    now = utcnow()
    created = data.pop("created_at", None) or now
    initial_stock = data.pop("initial_stock", 0)
    product = Product(**data, status="active", created_at=created, updated_at=now)
    session.add(product)
    session.flush()
    session.add_all(_attribute_rows(product.id, data.get("attributes") or {}))
    inventory.create_stock(
        session, product_id=product.id, on_hand=initial_stock, actor_user_id=actor_user_id
    )
    return product.id


def create_product(session: Session, *, data: dict[str, Any], actor_user_id: int) -> dict[str, Any]:
    if session.get(Category, data["category_id"]) is None:
        raise NotFound("Category", data["category_id"])
    sku = data["sku"]
    try:
        product_id = _insert_product(session, data=data, actor_user_id=actor_user_id)
        session.commit()
    except IntegrityError as exc:
        session.rollback()
        raise Conflict(f"A product with sku {sku!r} already exists") from exc
    return get_product(session, product_id)


def create_products(
    session: Session, *, items: list[dict[str, Any]], actor_user_id: int
) -> list[int]:
    """Create many products in one transaction: all of them, or none (bulk catalog import)."""
    category_ids = {item["category_id"] for item in items}
    known = set(session.scalars(select(Category.id).where(Category.id.in_(category_ids))))
    missing = sorted(category_ids - known)
    if missing:
        raise NotFound("Category", missing[0])
    skus = [item["sku"] for item in items]
    if len(set(skus)) != len(skus):
        raise Conflict("The batch names the same sku twice")
    taken = list(session.scalars(select(Product.sku).where(Product.sku.in_(skus)).limit(1)))
    if taken:
        raise Conflict(f"A product with sku {taken[0]!r} already exists")
    try:
        ids = [_insert_product(session, data=item, actor_user_id=actor_user_id) for item in items]
        session.commit()
    except IntegrityError as exc:
        session.rollback()
        raise Conflict("A product in the batch conflicts with an existing one") from exc
    return ids


def update_product(session: Session, *, product_id: int, changes: dict[str, Any]) -> dict[str, Any]:
    product = session.get(Product, product_id)
    if product is None:
        raise NotFound("Product", product_id)
    if "category_id" in changes and session.get(Category, changes["category_id"]) is None:
        raise NotFound("Category", changes["category_id"])
    for key, value in changes.items():
        setattr(product, key, value)
    if "attributes" in changes:
        session.execute(delete(ProductAttribute).where(ProductAttribute.product_id == product_id))
        session.add_all(_attribute_rows(product_id, changes["attributes"]))
    product.updated_at = utcnow()
    session.commit()
    return get_product(session, product_id)


def set_status(session: Session, *, product_id: int, status: str) -> dict[str, Any]:
    result = session.execute(
        update(Product).where(Product.id == product_id).values(status=status, updated_at=utcnow())
    )
    if result.rowcount != 1:
        session.rollback()
        raise NotFound("Product", product_id)
    session.commit()
    return get_product(session, product_id)
