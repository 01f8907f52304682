"""Words the demo catalog is made of: the category tree, brands, nouns, synonyms, attributes.

Kept as plain data apart from the generator so the vocabulary can grow without touching the
sampling code, and so tests can check properties of the vocabulary itself (synonyms that cross
categories, enough leaves). Titles are assembled from these words, so search quality depends on
this file: shared words across categories ("pro", "wireless", "backpack"), true synonyms
("earbuds"/"earphones", "sofa"/"couch", "tv"/"television", "sneakers"/"trainers"), and model
numbers give a search engine something to get right and something to get wrong.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

#: Colours are shared by every category: the commonest attribute words in real queries.
COLOURS: Final = (
    "black", "white", "grey", "silver", "navy", "blue", "red", "green", "beige", "pink",
    "brown", "olive",
)  # fmt: skip


@dataclass(frozen=True)
class Leaf:
    """A leaf category: its place in the tree and the words its products are described with.

    ``nouns[0]`` is the canonical product noun; the others are synonyms that titles use too, so
    a query with one word must find products titled with another. ``median_eur`` and ``sigma``
    parameterise the log-normal price; ``consumable`` leaves are bought again and again.
    """

    path: tuple[str, str, str]
    name: str
    nouns: tuple[str, ...]
    median_eur: float
    sigma: float
    attrs: dict[str, tuple[str | int | bool, ...]]
    adjectives: tuple[str, ...]
    features: tuple[str, ...]
    consumable: bool = False
    extra_words: tuple[str, ...] = field(default=())


#: Top-level and mid-level display names; slugs are the keys.
GROUP_NAMES: Final[dict[str, str]] = {
    "electronics": "Electronics",
    "audio": "Audio",
    "tv-video": "TV & Video",
    "computers": "Computers",
    "phones": "Phones",
    "home": "Home",
    "kitchen": "Kitchen",
    "furniture": "Furniture",
    "bedding": "Bedding",
    "fashion": "Fashion",
    "shoes": "Shoes",
    "clothing": "Clothing",
    "accessories": "Accessories",
    "sports": "Sports",
    "fitness": "Fitness",
    "outdoor": "Outdoor",
    "beauty": "Beauty",
    "skincare": "Skincare",
    "grocery": "Grocery",
    "coffee-tea": "Coffee & Tea",
}

_SIZES_CLOTHES: Final = ("xs", "s", "m", "l", "xl", "xxl")
_SIZES_SHOES: Final = (36, 37, 38, 39, 40, 41, 42, 43, 44, 45, 46)

LEAVES: Final[tuple[Leaf, ...]] = (
    Leaf(("electronics", "audio", "headphones"), "Headphones",
         ("headphones", "headset"), 89, 0.6,
         {"color": COLOURS[:6], "wireless": (True, False), "noise_cancelling": (True, False)},
         ("over-ear", "studio", "wireless", "foldable", "pro", "bass"),
         ("40 hours of battery", "memory foam cushions", "a detachable cable", "deep bass")),
    Leaf(("electronics", "audio", "earbuds"), "Earbuds",
         ("earbuds", "earphones", "in-ear headphones"), 69, 0.6,
         {"color": COLOURS[:5], "wireless": (True,), "waterproof": (True, False)},
         ("true wireless", "sport", "pro", "mini", "bluetooth"),
         ("a charging case", "touch controls", "sweat resistance", "clear calls")),
    Leaf(("electronics", "audio", "speakers"), "Speakers",
         ("speaker", "bluetooth speaker", "soundbar"), 79, 0.7,
         {"color": COLOURS[:8], "waterproof": (True, False), "wattage": (10, 20, 40, 80)},
         ("portable", "wireless", "party", "mini", "smart"),
         ("360 degree sound", "a built-in microphone", "stereo pairing", "rich bass")),
    Leaf(("electronics", "tv-video", "televisions"), "Televisions",
         ("tv", "television", "smart tv"), 549, 0.6,
         {"screen_size": (32, 43, 50, 55, 65, 75), "resolution": ("hd", "4k", "8k")},
         ("smart", "oled", "qled", "ultra hd", "led"),
         ("hdr", "a 120 hz panel", "voice control", "thin bezels")),
    Leaf(("electronics", "tv-video", "projectors"), "Projectors",
         ("projector", "beamer"), 399, 0.6,
         {"resolution": ("hd", "4k"), "color": ("black", "white", "grey")},
         ("portable", "home cinema", "mini", "short throw"),
         ("3000 lumens", "keystone correction", "a built-in speaker", "hdmi input")),
    Leaf(("electronics", "computers", "laptops"), "Laptops",
         ("laptop", "notebook"), 899, 0.5,
         {"screen_size": (13, 14, 15, 16, 17), "storage_gb": (256, 512, 1024),
          "color": ("silver", "grey", "black")},
         ("ultrabook", "gaming", "slim", "pro", "business", "2-in-1"),
         ("all-day battery", "a backlit keyboard", "a fast ssd", "a full hd display")),
    Leaf(("electronics", "computers", "monitors"), "Monitors",
         ("monitor", "display", "screen"), 249, 0.6,
         {"screen_size": (24, 27, 32, 34), "resolution": ("hd", "qhd", "4k")},
         ("curved", "gaming", "ultrawide", "office", "pro"),
         ("a 144 hz refresh rate", "usb-c", "an adjustable stand", "low blue light")),
    Leaf(("electronics", "computers", "keyboards"), "Keyboards",
         ("keyboard", "mechanical keyboard"), 59, 0.6,
         {"color": ("black", "white", "grey", "pink"), "wireless": (True, False),
          "layout": ("us", "uk", "de")},
         ("mechanical", "wireless", "compact", "gaming", "ergonomic"),
         ("hot-swappable switches", "rgb lighting", "a wrist rest", "quiet keys")),
    Leaf(("electronics", "phones", "smartphones"), "Smartphones",
         ("smartphone", "phone", "mobile phone"), 499, 0.6,
         {"storage_gb": (64, 128, 256, 512), "color": COLOURS[:6]},
         ("pro", "max", "lite", "5g", "plus"),
         ("a triple camera", "fast charging", "an oled screen", "5g connectivity")),
    Leaf(("electronics", "phones", "phone-cases"), "Phone Cases",
         ("phone case", "phone cover"), 19, 0.5,
         {"color": COLOURS, "material": ("silicone", "leather", "plastic")},
         ("slim", "rugged", "clear", "magnetic", "wallet"),
         ("raised edges", "drop protection", "wireless charging support")),
    Leaf(("home", "kitchen", "cookware"), "Cookware",
         ("frying pan", "saucepan", "skillet", "pot"), 49, 0.6,
         {"material": ("stainless steel", "cast iron", "aluminium", "ceramic"),
          "size_cm": (20, 24, 28, 32)},
         ("non-stick", "induction", "pro", "classic", "deep"),
         ("an oven-safe handle", "even heating", "a glass lid", "dishwasher safe")),
    Leaf(("home", "kitchen", "coffee-makers"), "Coffee Makers",
         ("coffee machine", "coffee maker", "espresso machine"), 149, 0.7,
         {"color": ("black", "silver", "red", "white"), "capacity_l": (1, 1.2, 1.5, 1.8)},
         ("espresso", "filter", "automatic", "compact", "pro"),
         ("a milk frother", "15 bar pressure", "a programmable timer", "a thermal jug")),
    Leaf(("home", "kitchen", "knives"), "Knives",
         ("knife", "chef knife", "knife set"), 39, 0.7,
         {"material": ("stainless steel", "damascus steel", "ceramic")},
         ("japanese", "chef", "santoku", "pro", "classic"),
         ("a full tang", "a razor-sharp edge", "an ergonomic handle")),
    Leaf(("home", "furniture", "sofas"), "Sofas",
         ("sofa", "couch", "settee"), 699, 0.5,
         {"color": ("grey", "beige", "navy", "green", "brown"),
          "material": ("fabric", "velvet", "leather"), "seats": (2, 3, 4)},
         ("corner", "modular", "sleeper", "classic", "compact"),
         ("removable covers", "deep seats", "solid wood legs", "a sleeper function")),
    Leaf(("home", "furniture", "office-chairs"), "Office Chairs",
         ("office chair", "desk chair", "ergonomic chair"), 179, 0.6,
         {"color": ("black", "grey", "white", "blue"), "material": ("mesh", "fabric", "leather")},
         ("ergonomic", "gaming", "executive", "pro"),
         ("lumbar support", "adjustable armrests", "a reclining back")),
    Leaf(("home", "furniture", "desks"), "Desks",
         ("desk", "standing desk", "writing desk"), 229, 0.6,
         {"color": ("white", "black", "oak", "walnut"), "width_cm": (100, 120, 140, 160)},
         ("standing", "compact", "corner", "electric", "classic"),
         ("an electric height adjustment", "cable management", "a solid top")),
    Leaf(("home", "bedding", "duvets"), "Duvets",
         ("duvet", "comforter", "quilt"), 69, 0.5,
         {"size": ("single", "double", "king"), "material": ("down", "cotton", "microfibre")},
         ("all-season", "summer", "winter", "hypoallergenic"),
         ("a breathable cover", "box stitching", "machine washable")),
    Leaf(("home", "bedding", "pillows"), "Pillows",
         ("pillow", "bed pillow"), 29, 0.5,
         {"material": ("memory foam", "down", "microfibre"),
          "firmness": ("soft", "medium", "firm")},
         ("orthopedic", "cooling", "hypoallergenic", "classic"),
         ("neck support", "a washable cover", "cooling gel")),
    Leaf(("fashion", "shoes", "sneakers"), "Sneakers",
         ("sneakers", "trainers", "running shoes"), 89, 0.5,
         {"color": COLOURS, "size": _SIZES_SHOES, "material": ("mesh", "leather", "canvas")},
         ("running", "retro", "classic", "lightweight", "pro"),
         ("a cushioned sole", "breathable mesh", "a grippy outsole")),
    Leaf(("fashion", "shoes", "boots"), "Boots",
         ("boots", "ankle boots", "hiking boots"), 119, 0.5,
         {"color": ("black", "brown", "olive", "beige"), "size": _SIZES_SHOES,
          "waterproof": (True, False)},
         ("chelsea", "hiking", "winter", "classic", "leather"),
         ("a waterproof membrane", "a lug sole", "warm lining")),
    Leaf(("fashion", "shoes", "sandals"), "Sandals",
         ("sandals", "flip flops", "slides"), 39, 0.5,
         {"color": COLOURS[:8], "size": _SIZES_SHOES},
         ("summer", "beach", "sport", "classic"),
         ("a contoured footbed", "adjustable straps")),
    Leaf(("fashion", "clothing", "t-shirts"), "T-Shirts",
         ("t-shirt", "tee", "shirt"), 19, 0.5,
         {"color": COLOURS, "size": _SIZES_CLOTHES, "material": ("cotton", "organic cotton")},
         ("basic", "oversized", "slim fit", "graphic", "classic"),
         ("soft organic cotton", "a relaxed fit", "a crew neck")),
    Leaf(("fashion", "clothing", "jackets"), "Jackets",
         ("jacket", "coat", "parka"), 129, 0.6,
         {"color": ("black", "navy", "olive", "beige", "red"), "size": _SIZES_CLOTHES,
          "waterproof": (True, False)},
         ("rain", "down", "winter", "lightweight", "bomber"),
         ("a detachable hood", "taped seams", "insulated lining")),
    Leaf(("fashion", "clothing", "jeans"), "Jeans",
         ("jeans", "denim"), 69, 0.5,
         {"color": ("blue", "black", "grey"), "size": _SIZES_CLOTHES,
          "fit": ("slim", "regular", "relaxed")},
         ("slim", "straight", "skinny", "vintage", "stretch"),
         ("stretch denim", "five pockets", "a classic wash")),
    Leaf(("fashion", "accessories", "backpacks"), "Backpacks",
         ("backpack", "rucksack", "daypack"), 59, 0.6,
         {"color": COLOURS[:8], "capacity_l": (15, 20, 25, 30), "waterproof": (True, False)},
         ("laptop", "travel", "urban", "rolltop", "mini"),
         ("a padded laptop sleeve", "hidden pockets", "comfortable straps")),
    Leaf(("fashion", "accessories", "watches"), "Watches",
         ("watch", "wristwatch", "smartwatch"), 149, 0.8,
         {"color": ("black", "silver", "gold", "rose gold"), "material": ("steel", "leather")},
         ("smart", "classic", "chronograph", "sport", "minimalist"),
         ("sapphire glass", "water resistance", "a heart rate sensor")),
    Leaf(("sports", "fitness", "yoga-mats"), "Yoga Mats",
         ("yoga mat", "exercise mat", "fitness mat"), 29, 0.5,
         {"color": ("purple", "blue", "black", "green", "pink"), "thickness_mm": (4, 6, 8, 10)},
         ("non-slip", "eco", "travel", "pro", "thick"),
         ("a non-slip surface", "a carry strap", "alignment lines")),
    Leaf(("sports", "fitness", "dumbbells"), "Dumbbells",
         ("dumbbells", "weights", "dumbbell set"), 49, 0.7,
         {"weight_kg": (2, 5, 10, 20, 32), "material": ("cast iron", "neoprene", "rubber")},
         ("adjustable", "hex", "pro", "compact"),
         ("knurled handles", "a quick-change dial", "a storage tray")),
    Leaf(("sports", "outdoor", "tents"), "Tents",
         ("tent", "camping tent"), 149, 0.6,
         {"persons": (1, 2, 3, 4, 6), "color": ("green", "olive", "orange", "grey")},
         ("ultralight", "family", "pop-up", "dome", "trekking"),
         ("a waterproof flysheet", "two entrances", "quick pitching")),
    Leaf(("sports", "outdoor", "hiking-backpacks"), "Hiking Backpacks",
         ("hiking backpack", "trekking backpack", "rucksack"), 99, 0.5,
         {"capacity_l": (30, 40, 50, 65), "color": ("green", "olive", "blue", "black")},
         ("trekking", "ultralight", "alpine", "trail"),
         ("an adjustable back system", "a rain cover", "hip belt pockets")),
    Leaf(("sports", "outdoor", "sleeping-bags"), "Sleeping Bags",
         ("sleeping bag",), 79, 0.6,
         {"temperature_c": (-10, -5, 0, 5, 10), "material": ("down", "synthetic")},
         ("mummy", "ultralight", "winter", "summer", "compact"),
         ("a compression sack", "a draft collar", "a two-way zip")),
    Leaf(("beauty", "skincare", "moisturizers"), "Moisturizers",
         ("moisturizer", "face cream", "moisturiser"), 24, 0.6,
         {"skin_type": ("dry", "oily", "combination", "sensitive"), "volume_ml": (30, 50, 100)},
         ("hydrating", "night", "day", "organic", "vegan"),
         ("hyaluronic acid", "no added fragrance", "a light texture"), consumable=True),
    Leaf(("beauty", "skincare", "sunscreen"), "Sunscreen",
         ("sunscreen", "sun cream", "spf lotion"), 16, 0.5,
         {"spf": (15, 30, 50), "volume_ml": (50, 100, 200)},
         ("sport", "kids", "mineral", "water-resistant"),
         ("broad spectrum protection", "no white cast", "reef-friendly filters"), consumable=True),
    Leaf(("grocery", "coffee-tea", "coffee-beans"), "Coffee Beans",
         ("coffee beans", "whole bean coffee", "coffee"), 14, 0.4,
         {"roast": ("light", "medium", "dark"), "weight_g": (250, 500, 1000),
          "organic": (True, False)},
         ("espresso", "single origin", "house blend", "arabica", "decaf"),
         ("notes of chocolate", "fresh roasting", "fair trade sourcing"), consumable=True),
    Leaf(("grocery", "coffee-tea", "tea"), "Tea",
         ("tea", "loose leaf tea", "tea bags"), 9, 0.5,
         {"tea_type": ("green", "black", "herbal", "oolong"), "weight_g": (100, 250, 500),
          "organic": (True, False)},
         ("earl grey", "breakfast", "jasmine", "chai", "mint"),
         ("whole leaves", "a resealable pouch", "a bright cup"), consumable=True),
)  # fmt: skip

#: Brands per mid-level category with (price level multiplier, quality mean). A brand's price
#: level shifts every price in its categories; its quality shifts products' hidden appeal, so
#: premium is not always better and budget brands are not always worse.
BRANDS: Final[dict[str, tuple[tuple[str, float, float], ...]]] = {
    "audio": (("Sonic", 1.0, 0.3), ("Aural", 1.6, 0.6), ("Boom", 0.6, -0.2),
              ("Verto", 2.4, 0.8), ("Pulse", 0.8, 0.0), ("Nordhaus", 1.2, 0.2)),
    "tv-video": (("Lumina", 1.3, 0.5), ("Vistar", 0.7, -0.1), ("Kyoden", 1.8, 0.7),
                 ("Pulse", 0.8, 0.0)),
    "computers": (("Kyoden", 1.5, 0.6), ("Arcbyte", 1.0, 0.2), ("Novatek", 0.7, -0.2),
                  ("Zephyr", 1.9, 0.7), ("Keyforge", 0.9, 0.3)),
    "phones": (("Zephyr", 1.8, 0.7), ("Orbitel", 1.0, 0.2), ("Novatek", 0.6, -0.3),
               ("Shellguard", 0.8, 0.1)),
    "kitchen": (("Nordhaus", 1.4, 0.5), ("Chefline", 1.0, 0.2), ("Ferro", 1.9, 0.8),
                ("Homely", 0.6, -0.2), ("Bruvia", 1.2, 0.3)),
    "furniture": (("Nordhaus", 1.3, 0.4), ("Oakridge", 1.8, 0.7), ("Homely", 0.6, -0.2),
                  ("Sitwell", 1.1, 0.3)),
    "bedding": (("Dreamwell", 1.2, 0.4), ("Homely", 0.6, -0.1), ("Nordhaus", 1.4, 0.5),
                ("Cloudnine", 1.7, 0.6)),
    "shoes": (("Stride", 1.0, 0.3), ("Velox", 1.5, 0.6), ("Trailmark", 1.3, 0.4),
              ("Urbana", 0.7, -0.1), ("Pacer", 0.9, 0.1)),
    "clothing": (("Urbana", 0.7, 0.0), ("Northline", 1.5, 0.6), ("Basico", 0.5, -0.2),
                 ("Velox", 1.3, 0.4), ("Fjellstad", 1.9, 0.7)),
    "accessories": (("Urbana", 0.8, 0.0), ("Timeless", 1.8, 0.6), ("Trailmark", 1.2, 0.4),
                    ("Packwise", 1.0, 0.3), ("Zephyr", 2.0, 0.6)),
    "fitness": (("Flexa", 1.0, 0.3), ("Ironclad", 1.4, 0.5), ("Basico", 0.6, -0.2),
                ("Velox", 1.2, 0.3)),
    "outdoor": (("Trailmark", 1.3, 0.5), ("Fjellstad", 1.8, 0.8), ("Campio", 0.7, -0.1),
                ("Packwise", 1.0, 0.2)),
    "skincare": (("Dermia", 1.2, 0.5), ("Pureleaf", 0.9, 0.3), ("Solara", 1.0, 0.2),
                 ("Basico", 0.5, -0.3)),
    "coffee-tea": (("Bruvia", 1.2, 0.5), ("Highland", 1.5, 0.7), ("Pureleaf", 0.9, 0.2),
                   ("Basico", 0.6, -0.2)),
}  # fmt: skip

#: Words appended to model names; letters-plus-digits codes make exact-match queries possible.
MODEL_PREFIXES: Final = ("X", "S", "Z", "Pro", "Air", "Max", "One", "Neo", "Ultra", "Go")

#: Queries that no product should match: misspelt beyond repair or for things not sold here.
ZERO_RESULT_QUERIES: Final = (
    "lawn mower", "guitar strings", "dog food", "car tyres", "printer ink", "baby stroller",
    "qzxvbn", "aquarium pump", "ski goggles", "paint roller", "bicycle helmet", "vinyl records",
)  # fmt: skip

#: Typo-free query words that people type for a leaf but titles never contain.
QUERY_SYNONYMS: Final[dict[str, tuple[str, ...]]] = {
    "headphones": ("headphone", "cans"),
    "earbuds": ("airbuds", "earpods"),
    "televisions": ("telly", "tvs"),
    "sofas": ("sofa bed",),
    "sneakers": ("kicks", "running trainers"),
    "t-shirts": ("tshirt", "tees"),
    "laptops": ("computer", "macbook"),
    "smartphones": ("cellphone", "iphone"),
}
