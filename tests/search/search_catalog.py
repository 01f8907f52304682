"""A small fixed catalog for relevance tests: each product exists to make one behaviour visible."""

from __future__ import annotations

from models.search.documents import ProductDocument

DAY = 86_400
NOW = 1_750_000_000


def doc(pid: str, title: str, brand: str, category: str, price: int, **kw) -> ProductDocument:
    """Shorthand constructor with sensible defaults for the test catalog."""
    kw.setdefault("created_at", NOW - 30 * DAY)
    return ProductDocument(
        product_id=pid, title=title, brand=brand, category_path=category, price=price, **kw
    )


CATALOG: list[ProductDocument] = [
    doc(
        "p1",
        "Sony WH-1000XM5 Wireless Headphones",
        "Sony",
        "Electronics > Audio > Headphones",
        34900,
        attributes={"color": "black", "connectivity": "bluetooth"},
        rating=4.7,
        popularity=900,
        description="Noise cancelling over-ear headphones.",
    ),
    doc(
        "p2",
        "Bose QuietComfort Headphones",
        "Bose",
        "Electronics > Audio > Headphones",
        29900,
        attributes={"color": "white", "connectivity": "bluetooth"},
        rating=4.5,
        popularity=700,
        created_at=NOW - 2 * DAY,
    ),
    doc(
        "p3",
        "Apple AirPods Pro Earbuds",
        "Apple",
        "Electronics > Audio > Earbuds",
        24900,
        attributes={"color": "white", "connectivity": "bluetooth"},
        rating=4.6,
        popularity=1200,
    ),
    doc(
        "p4",
        "Samsung Galaxy Buds Earphones",
        "Samsung",
        "Electronics > Audio > Earbuds",
        14900,
        attributes={"color": "black"},
        rating=4.1,
        popularity=300,
        in_stock=False,
    ),
    doc(
        "p5",
        "LG 55 inch OLED Television",
        "LG",
        "Electronics > TV & Video > Televisions",
        129900,
        attributes={"size": "55"},
        rating=4.8,
        popularity=400,
    ),
    doc(
        "p6",
        "Dell XPS 13 Laptop",
        "Dell",
        "Electronics > Computers > Laptops",
        119900,
        attributes={"color": "silver"},
        rating=4.4,
        popularity=500,
    ),
    doc(
        "p7",
        "Lenovo ThinkPad Notebook",
        "Lenovo",
        "Electronics > Computers > Laptops",
        99900,
        attributes={"color": "black"},
        rating=4.2,
        popularity=350,
    ),
    doc(
        "p8",
        "Nike Air Zoom Running Sneakers",
        "Nike",
        "Fashion > Shoes > Sneakers",
        12900,
        attributes={"color": "red", "size": "42"},
        rating=4.3,
        popularity=800,
    ),
    doc(
        "p9",
        "Adidas Ultraboost Trainers",
        "Adidas",
        "Fashion > Shoes > Sneakers",
        17900,
        attributes={"color": "black", "size": "43"},
        rating=4.5,
        popularity=650,
    ),
    doc(
        "p10",
        "Grey Three Seater Sofa",
        "Ikea",
        "Home > Living Room > Sofas",
        49900,
        attributes={"color": "grey"},
        rating=3.9,
        popularity=150,
    ),
    doc(
        "p11",
        "Leather Couch <Deluxe> & Co",
        "Chesterfield",
        "Home > Living Room > Sofas",
        159900,
        attributes={"color": "brown"},
        rating=4.0,
        popularity=90,
    ),
    doc(
        "p12",
        "Headphone Stand Aluminium",
        "Satechi",
        "Electronics > Audio > Accessories",
        3900,
        attributes={"color": "silver"},
        rating=4.2,
        popularity=60,
        description="A stand for wireless headphones.",
    ),
    doc(
        "p13",
        "Wireless Mouse",
        "Logitech",
        "Electronics > Computers > Accessories",
        2900,
        attributes={"color": "black", "connectivity": "bluetooth"},
        rating=4.0,
        popularity=450,
    ),
    doc(
        "p14",
        "Crème Brûlée Torch",
        "Bonjour",
        "Home > Kitchen > Tools",
        2500,
        rating=4.1,
        popularity=40,
    ),
]
