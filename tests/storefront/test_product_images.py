"""Product pictures drawn per SKU under /static/placeholder/, and HEAD on the shop's pages."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from serving.api.routes.storefront import CONTENT_SECURITY_POLICY
from serving.services.shop.product_images import (
    DEFAULT_SHAPE,
    SHAPES,
    ImageSource,
    brand_hue,
    render_svg,
    shape_for,
    wrap,
)


def test_every_demo_sku_has_a_picture_with_its_title_and_brand(client, small_catalog) -> None:
    r = client.get("/static/placeholder/HP-1.svg")
    assert r.status_code == 200
    assert r.headers["content-type"] == "image/svg+xml"
    assert r.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    root = ET.fromstring(r.text)
    texts = [t.text for t in root.iter("{http://www.w3.org/2000/svg}text")]
    assert "SONIC" in texts
    assert "Sonic Wireless Headphones" in " ".join(t for t in texts if t != "SONIC")
    assert f"hsl({brand_hue('Sonic')}," in r.text


def test_unknown_sku_is_a_real_404_so_the_storefront_falls_back(client, small_catalog) -> None:
    r = client.get("/static/placeholder/NOPE-1.svg")
    assert r.status_code == 404
    assert r.headers["content-type"] == "application/problem+json"


def test_head_answers_like_get_for_pages_static_files_and_pictures(client, small_catalog) -> None:
    for path in ("/", "/c/audio", "/static/css/style.css", "/static/placeholder/SP-1.svg"):
        r = client.head(path)
        assert r.status_code == 200, path
        assert r.text == ""


def test_category_group_picks_the_shape_and_brand_the_colour() -> None:
    assert shape_for("electronics/audio/headphones") == SHAPES["audio"]
    assert shape_for("home/kitchen") == SHAPES["kitchen"]
    assert shape_for("garden/tools/rakes") == DEFAULT_SHAPE
    a = render_svg(ImageSource("X1 Speaker", "Boom", "electronics/audio/speakers"))
    b = render_svg(ImageSource("X2 Headphones", "Boom", "electronics/audio/headphones"))
    hue = brand_hue("Boom")
    assert f'fill="hsl({hue},55%,92%)"' in a and f'fill="hsl({hue},55%,92%)"' in b


def test_titles_are_escaped_and_wrapped_into_at_most_three_lines() -> None:
    svg = render_svg(ImageSource('<script>"x"</script> & more', "A&B", "x"))
    ET.fromstring(svg)  # still well-formed XML
    assert "<script>" not in svg
    lines = wrap("Aural Pro690 Noise-Cancelling Over-Ear Headphones With A Very Long Name Indeed")
    assert 1 <= len(lines) <= 3
    assert all(len(line) <= 24 for line in lines)
    assert lines[-1].endswith("…")
    assert wrap("Short") == ["Short"]
