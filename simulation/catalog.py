"""The demo catalog: a deterministic function of a seed and a size.

Everything a shopper could see (titles, brands, prices, attributes, stock) and everything
only the ground truth knows (latent factors, quality) comes out of one seeded generator, so
the same seed gives byte-identical products in the same order whatever machine runs it. The
catalog is built with numpy in bulk (200,000 products take seconds) and only turned into
API payloads when the loader sends them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd

from simulation import grammar, vocab

#: The demo shop prices everything in one currency.
CURRENCY = "EUR"

#: Dimensions of the hidden product factors that users' taste vectors are dotted with.
N_FACTORS = 8
#: The simulated calendar starts here unless told otherwise; catalog items predate it.
DEFAULT_START = datetime(2026, 1, 5, tzinfo=UTC)


@dataclass(frozen=True)
class CategorySpec:
    """One category node; ``parent`` is the parent's slug (None at the top)."""

    slug: str
    name: str
    parent: str | None
    depth: int


@dataclass
class Catalog:
    """Categories (parents first), leaves, brands and products as parallel arrays.

    Parallel arrays rather than objects because the shoppers score every product of a category
    for every session and numpy does that in microseconds.
    """

    seed: int
    categories: list[CategorySpec]
    leaves: list[vocab.Leaf]
    brands: list[str]
    brand_price_level: np.ndarray
    skus: list[str]
    titles: list[str]
    descriptions: list[str]
    leaf: np.ndarray  # int index into leaves
    brand: np.ndarray  # int index into brands
    price_minor: np.ndarray
    attributes: list[dict[str, str | int | float | bool]]
    stock: np.ndarray
    created_at: list[datetime]
    factors: np.ndarray  # (n, N_FACTORS)
    quality: np.ndarray
    rel_price: np.ndarray  # log(price / leaf median price): what price sensitivity weighs

    def __len__(self) -> int:
        return len(self.skus)

    def leaf_slug(self, index: int) -> str:
        """The slug of leaf ``index`` (its last path element)."""
        return self.leaves[index].path[2]

    def products_in_leaf(self, leaf_index: int) -> np.ndarray:
        """Indices of the products in one leaf category, in catalog order."""
        return self._by_leaf[leaf_index]

    def __post_init__(self) -> None:
        order = np.argsort(self.leaf, kind="stable")
        bounds = np.searchsorted(self.leaf[order], np.arange(len(self.leaves) + 1))
        self._by_leaf = [order[bounds[i] : bounds[i + 1]] for i in range(len(self.leaves))]

    def payload(self, index: int, category_id: int) -> dict[str, Any]:
        """The admin API body that creates product ``index`` under ``category_id``."""
        return {
            "sku": self.skus[index],
            "title": self.titles[index],
            "description": self.descriptions[index],
            "brand": self.brands[int(self.brand[index])],
            "category_id": category_id,
            "price_minor": int(self.price_minor[index]),
            "currency": CURRENCY,
            "attributes": self.attributes[index],
            "image_urls": [placeholder_url(self.skus[index])],
            "initial_stock": int(self.stock[index]),
            "created_at": self.created_at[index].isoformat(),
        }

    def to_frame(self) -> pd.DataFrame:
        """The whole catalog, hidden columns included, for the ground-truth Parquet."""
        frame = pd.DataFrame(
            {
                "sku": self.skus,
                "title": self.titles,
                "category": [self.leaf_slug(int(i)) for i in self.leaf],
                "category_path": ["/".join(self.leaves[int(i)].path) for i in self.leaf],
                "brand": [self.brands[int(b)] for b in self.brand],
                "price_minor": self.price_minor.astype(np.int64),
                "initial_stock": self.stock.astype(np.int64),
                "quality": self.quality,
                "rel_price": self.rel_price,
            }
        )
        for k in range(N_FACTORS):
            frame[f"f{k}"] = self.factors[:, k]
        return frame


def placeholder_url(sku: str) -> str:
    """Where the shop draws the product's picture (``serving/services/shop/product_images.py``:
    category shape, brand colour, title; no downloads ever)."""
    return f"/static/placeholder/{sku}.svg"


def category_specs() -> list[CategorySpec]:
    """The category tree, parents before children, so the loader can create it in order."""
    specs: list[CategorySpec] = []
    seen: set[str] = set()
    for leaf in vocab.LEAVES:
        top, mid, slug = leaf.path
        for depth, (node, parent) in enumerate(((top, None), (mid, top))):
            if node not in seen:
                seen.add(node)
                specs.append(CategorySpec(node, vocab.GROUP_NAMES[node], parent, depth))
        specs.append(CategorySpec(slug, leaf.name, mid, 2))
    return specs


def _format_attr(key: str, value: str | int | float | bool) -> str | None:
    """How an attribute reads inside a title; booleans only show when true."""
    if isinstance(value, bool):
        return key.replace("_", "-") if value else None
    units = {
        "screen_size": '"', "storage_gb": "GB", "capacity_l": "L", "size_cm": "cm",
        "wattage": "W", "weight_kg": "kg", "volume_ml": "ml", "weight_g": "g",
        "thickness_mm": "mm", "width_cm": "cm", "temperature_c": "°C",
    }  # fmt: skip
    if key in units:
        return f"{value}{units[key]}"
    if key == "persons":
        return f"{value}-person"
    if key == "seats":
        return f"{value}-seater"
    if key == "spf":
        return f"SPF {value}"
    if key in ("size", "layout", "fit", "skin_type", "firmness", "tea_type", "roast"):
        return None
    return str(value)


def _spec_item(key: str, value: str | int | float | bool) -> str:
    """One attribute as a shop writes it: "storage 64GB", "wireless: yes" (not True)."""
    if isinstance(value, bool):
        return f"{key.replace('_', ' ')}: {'yes' if value else 'no'}"
    label = key.replace("_", " ")
    shown = _format_attr(key, value)
    if shown and shown != str(value):
        label = " ".join(w for w in label.split() if w.rstrip("s") not in shown.lower())
        return f"{label} {shown}".strip()
    return f"{label} {value}"


def generate_catalog(
    seed: int = 7, n_products: int = 5000, start: datetime = DEFAULT_START
) -> Catalog:
    """Build the catalog for ``seed``; the same arguments always give the same catalog."""
    rng = np.random.default_rng([seed, 101])
    leaves = list(vocab.LEAVES)
    n_leaves = len(leaves)
    brands: list[str] = []
    brand_index: dict[str, int] = {}
    brand_level: list[float] = []
    brand_quality: list[float] = []
    leaf_brands: list[list[int]] = []
    for leaf in leaves:
        ids = []
        for name, level, quality in vocab.BRANDS[leaf.path[1]]:
            if name not in brand_index:
                brand_index[name] = len(brands)
                brands.append(name)
                brand_level.append(level)
                brand_quality.append(quality)
            ids.append(brand_index[name])
        leaf_brands.append(ids)
    level = np.array(brand_level)
    bquality = np.array(brand_quality)

    # Leaf sizes differ (more t-shirts than projectors): a Dirichlet share per leaf.
    share = rng.dirichlet(np.full(n_leaves, 4.0))
    leaf = rng.choice(n_leaves, size=n_products, p=share)
    leaf.sort(kind="stable")
    rng.shuffle(leaf)
    leaf_center = rng.normal(0, 0.9, size=(n_leaves, N_FACTORS))
    brand_style = rng.normal(0, 0.6, size=(len(brands), N_FACTORS))

    brand = np.empty(n_products, dtype=np.int64)
    for li in range(n_leaves):
        where = np.flatnonzero(leaf == li)
        ids = leaf_brands[li]
        # Brand sizes follow a steep curve too: a few brands make most of a category.
        weights = 1.0 / np.arange(1, len(ids) + 1) ** 0.8
        weights = rng.permutation(weights / weights.sum())
        brand[where] = np.asarray(ids)[rng.choice(len(ids), size=len(where), p=weights)]

    medians = np.array([lf.median_eur for lf in leaves])[leaf] * level[brand]
    sigmas = np.array([lf.sigma for lf in leaves])[leaf]
    euros = np.exp(np.log(medians) + sigmas * 0.6 * rng.standard_normal(n_products))
    # Shop prices end in .99 or .49: round to half euros, then take a cent off.
    price_minor = np.maximum(199, np.round(euros * 2) * 50 - 1).astype(np.int64)
    leaf_median = np.array([lf.median_eur * 100 for lf in leaves])[leaf]
    rel_price = np.log(price_minor / leaf_median)

    factors = (
        leaf_center[leaf] * 0.7
        + brand_style[brand] * 0.7
        + rng.normal(0, 0.6, size=(n_products, N_FACTORS))
    ) / math.sqrt(N_FACTORS)
    quality = bquality[brand] + rng.normal(0, 0.6, size=n_products)
    stock = np.where(
        rng.random(n_products) < 0.03, 0, np.round(rng.lognormal(3.6, 0.8, n_products))
    ).astype(np.int64)
    age_days = rng.uniform(1, 365, size=n_products)

    # Per-product word choices are drawn as integer arrays up front: cheap at 200k products.
    pick_adj = rng.integers(0, 1 << 30, size=n_products)
    pick_noun = rng.random(n_products)
    pick_model = rng.integers(0, len(vocab.MODEL_PREFIXES), size=n_products)
    model_num = rng.integers(1, 100, size=n_products) * rng.choice([1, 10, 100], size=n_products)
    pick_attr = rng.integers(0, 1 << 30, size=(n_products, 6))
    pick_feat = rng.integers(0, 1 << 30, size=(n_products, 2))

    skus, titles, descriptions, attributes, created = [], [], [], [], []
    for i in range(n_products):
        lf = leaves[int(leaf[i])]
        b = brands[int(brand[i])]
        attrs: dict[str, str | int | float | bool] = {}
        for k, (key, values) in enumerate(lf.attrs.items()):
            attrs[key] = values[int(pick_attr[i, k % 6]) % len(values)]
        # The canonical noun most of the time, a synonym otherwise: both must be searchable.
        nouns = lf.nouns
        if len(nouns) == 1 or pick_noun[i] < 0.6:
            noun = nouns[0]
        else:
            noun = nouns[1 + int(pick_noun[i] * 1000) % (len(nouns) - 1)]
        adj = lf.adjectives[int(pick_adj[i]) % len(lf.adjectives)]
        model = f"{vocab.MODEL_PREFIXES[int(pick_model[i])]}{int(model_num[i])}"
        shown = [w for key, v in attrs.items() if (w := _format_attr(key, v))][:2]
        colour = attrs.get("color")
        # No word twice: "wireless" as attribute and adjective, "mechanical" before
        # "mechanical keyboard"; the brand and model are never dropped.
        words = grammar.without_repeats([*(s for s in shown if s != colour), adj, noun])
        head = " ".join([b, model, *words])
        title = _titlecase(head) + (f", {str(colour).title()}" if colour else "")
        feats = lf.features
        f1 = feats[int(pick_feat[i, 0]) % len(feats)]
        f2 = feats[int(pick_feat[i, 1]) % len(feats)]
        spec = "; ".join(_spec_item(k, v) for k, v in attrs.items())
        extra = f" and {f2}" if f2 != f1 else ""
        thing = " ".join(grammar.without_repeats([adj, noun]))
        descriptions.append(
            f"The {b} {model} {thing} {grammar.verb(noun, 'has', 'have')} {f1}{extra}. "
            f"{lf.name} from {b}, {vocab.GROUP_NAMES[lf.path[1]].lower()} range. "
            f"Details: {spec}."
        )
        skus.append(f"{lf.path[2][:4].upper().replace('-', '')}-{i:06d}")
        titles.append(title)
        # Consumables say so in the product data, as a real catalog would: the shop learns
        # "buy it again" categories from it (docs/models.md), titles never mention it.
        attributes.append({**attrs, "consumable": True} if lf.consumable else attrs)
        created.append(start - timedelta(days=float(age_days[i])))
    return Catalog(
        seed=seed,
        categories=category_specs(),
        leaves=leaves,
        brands=brands,
        brand_price_level=level,
        skus=skus,
        titles=titles,
        descriptions=descriptions,
        leaf=leaf.astype(np.int64),
        brand=brand,
        price_minor=price_minor,
        attributes=attributes,
        stock=stock,
        created_at=created,
        factors=factors,
        quality=quality,
        rel_price=rel_price,
    )


def _titlecase(text: str) -> str:
    """Capitalise words but keep model codes and units as they are (``X200``, ``4k``)."""
    out = []
    for word in text.split():
        if word in _UPPER_WORDS:
            out.append(word.upper())
        elif any(c.isdigit() for c in word) or word[0].isupper():
            out.append(word)
        else:
            out.append(word.title())
    return " ".join(out)


_UPPER_WORDS = frozenset({"hd", "qhd", "oled", "qled", "led", "5g", "us", "uk", "de", "xl", "xxl"})
