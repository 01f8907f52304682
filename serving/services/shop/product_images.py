"""Product pictures drawn from the catalog itself: a category pictogram on the brand's colour.

The demo shop has no photographs and fetches nothing from outside, yet a shop of grey boxes
reads as broken. Every product's ``image_urls`` point at ``/static/placeholder/<SKU>.svg``;
this module draws that SVG from the product's row: the mid-level category picks the shape
(headphones, a laptop, a sofa...), the brand picks the colour (the same brand is the same
colour everywhere), and the title is written under the shape. The output is a pure function of
those three strings, so a browser may cache it and tests can compare it byte for byte.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from html import escape
from typing import Any

from sqlalchemy import bindparam, select

from serving.db.tables.catalog import Category, Product

#: One pictogram per category group (the second slug of a category path), drawn in a 200x200
#: box at the top of the picture. Groups without their own shape fall back to their top level.
SHAPES: dict[str, str] = {
    "audio": (
        '<path d="M40 120 A60 60 0 0 1 160 120" fill="none" stroke-width="14"/>'
        '<rect x="26" y="110" width="36" height="60" rx="12"/>'
        '<rect x="138" y="110" width="36" height="60" rx="12"/>'
    ),
    "tv-video": (
        '<rect x="20" y="40" width="160" height="100" rx="8"/>'
        '<rect x="80" y="146" width="40" height="10"/><rect x="60" y="156" width="80" height="8"/>'
    ),
    "computers": (
        '<rect x="40" y="50" width="120" height="80" rx="6"/>'
        '<path d="M20 140 H180 L170 158 H30 Z"/>'
    ),
    "phones": '<rect x="65" y="25" width="70" height="140" rx="12"/>',
    "kitchen": (
        '<path d="M40 80 H160 V140 A20 20 0 0 1 140 160 H60 A20 20 0 0 1 40 140 Z"/>'
        '<rect x="20" y="72" width="160" height="12" rx="6"/>'
        '<rect x="88" y="56" width="24" height="14"/>'
    ),
    "furniture": (
        '<rect x="30" y="70" width="140" height="50" rx="10"/>'
        '<rect x="20" y="100" width="160" height="40" rx="10"/>'
        '<rect x="30" y="140" width="12" height="22"/>'
        '<rect x="158" y="140" width="12" height="22"/>'
    ),
    "bedding": (
        '<rect x="20" y="100" width="160" height="40" rx="6"/>'
        '<rect x="30" y="80" width="50" height="22" rx="8"/>'
        '<rect x="20" y="60" width="12" height="100"/><rect x="168" y="90" width="12" height="70"/>'
    ),
    "shoes": '<path d="M25 130 V80 H70 L90 105 L160 115 A20 20 0 0 1 180 135 V150 H25 Z"/>',
    "clothing": (
        '<path d="M70 30 L30 55 L45 90 L62 82 V170 H138 V82 L155 90 L170 55 L130 30'
        ' Q100 55 70 30 Z"/>'
    ),
    "accessories": (
        '<path d="M70 70 V55 A30 30 0 0 1 130 55 V70" fill="none" stroke-width="10"/>'
        '<rect x="35" y="70" width="130" height="95" rx="14"/>'
    ),
    "fitness": (
        '<rect x="20" y="70" width="24" height="60" rx="6"/>'
        '<rect x="156" y="70" width="24" height="60" rx="6"/>'
        '<rect x="44" y="82" width="16" height="36" rx="4"/>'
        '<rect x="140" y="82" width="16" height="36" rx="4"/>'
        '<rect x="60" y="94" width="80" height="12"/>'
    ),
    "outdoor": '<path d="M100 30 L175 165 H25 Z"/>',
    "skincare": (
        '<rect x="70" y="40" width="60" height="24" rx="4"/>'
        '<rect x="55" y="64" width="90" height="106" rx="18"/>'
    ),
    "coffee-tea": (
        '<path d="M40 70 H140 V130 A40 40 0 0 1 100 170 H80 A40 40 0 0 1 40 130 Z"/>'
        '<path d="M140 85 A22 22 0 0 1 140 130" fill="none" stroke-width="12"/>'
    ),
}
#: Any category outside the demo tree: a parcel.
DEFAULT_SHAPE = (
    '<rect x="40" y="55" width="120" height="110" rx="6"/>'
    '<path d="M40 90 H160 M100 55 V165" fill="none" stroke-width="8"/>'
)
LINE_CHARS = 24
MAX_LINES = 3


@dataclass(frozen=True)
class ImageSource:
    """What a picture is drawn from: the product's title, brand and category path."""

    title: str
    brand: str
    category_path: str


def brand_hue(brand: str) -> int:
    """A stable hue for a brand name (crc32, not ``hash``: that changes per process)."""
    return zlib.crc32(brand.strip().lower().encode()) % 360


def shape_for(category_path: str) -> str:
    """The pictogram of the deepest known group on the path, else a parcel."""
    for slug in reversed(category_path.split("/")):
        if slug in SHAPES:
            return SHAPES[slug]
    return DEFAULT_SHAPE


def wrap(title: str, width: int = LINE_CHARS, lines: int = MAX_LINES) -> list[str]:
    """Break a title into at most ``lines`` lines of about ``width`` characters (… if cut)."""
    out: list[str] = []
    current = ""
    for word in title.split():
        candidate = f"{current} {word}".strip()
        if len(candidate) <= width or not current:
            current = candidate
            continue
        out.append(current)
        current = word
        if len(out) == lines:
            break
    if current and len(out) < lines:
        out.append(current)
    elif len(out) == lines and " ".join(out) != " ".join(title.split()):
        out[-1] = out[-1][: width - 1].rstrip(" ,") + "…"
    return out


def render_svg(source: ImageSource) -> str:
    """The product picture: 400x400, brand-coloured card, category shape, title, brand."""
    hue = brand_hue(source.brand)
    lines = wrap(source.title)
    text = "".join(
        f'<text x="200" y="{300 + i * 26}" font-size="21">{escape(line)}</text>'
        for i, line in enumerate(lines)
    )
    return (
        '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 400 400" width="400" height="400"'
        f' role="img" aria-label="{escape(source.title)}">'
        f'<rect width="400" height="400" fill="hsl({hue},55%,92%)"/>'
        f'<g transform="translate(120 30) scale(0.8)" fill="hsl({hue},50%,45%)"'
        f' stroke="hsl({hue},50%,45%)" stroke-linecap="round">{shape_for(source.category_path)}</g>'
        f'<g font-family="system-ui,sans-serif" text-anchor="middle" fill="hsl({hue},40%,20%)">'
        f'<text x="200" y="266" font-size="16" font-weight="700" letter-spacing="2">'
        f"{escape(source.brand.upper())}</text>{text}</g></svg>"
    )


_BY_SKU = (
    select(Product.title, Product.brand, Category.path)
    .join(Category, Category.id == Product.category_id)
    .where(Product.sku == bindparam("sku"))
)


def load_source(conn: Any, sku: str) -> ImageSource | None:
    """The product behind a SKU, or None when no product has it (the caller answers 404)."""
    row = conn.execute(_BY_SKU, {"sku": sku}).first()
    if row is None:
        return None
    return ImageSource(title=row.title, brand=row.brand or "", category_path=row.path)
