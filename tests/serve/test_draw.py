"""Overlays: every character of the title band drawn (no missing-glyph boxes), the legend kept under long
titles, point labels kept inside the image."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

from molmo.text.points import Point
from molmo.serve.draw import MARKER_FILL, _font, draw_points


def pink(region: Image.Image) -> int:
    a = np.asarray(region.convert("RGB")).astype(int)
    return int(((a[..., 0] > 200) & (a[..., 1] < 90) & (a[..., 2] > 60)).sum())


def test_band_font_has_the_em_dash():
    # a missing glyph is a tall box; the em dash is a flat wide stroke
    left, top, right, bottom = _font(20).getmask("—").getbbox()
    assert right - left >= 12 and bottom - top <= 3


def test_long_title_keeps_the_legend():
    img = Image.new("RGB", (200, 150), "white")
    points = [Point(50, 50, "yellow shapes"), Point(120, 90, "yellow shapes")]
    short = draw_points(img, points)
    long = draw_points(img, points, title="word " * 400)
    band_short, band_long = short.height - 150, long.height - 150
    assert band_long >= 2 * band_short  # title lines on top, the legend line below them
    legend_row = long.crop((0, band_long - band_short, 200, band_long))
    assert pink(legend_row) > 20  # "yellow shapes: 2 points" drawn in the marker colour
    title_rows = np.asarray(long.crop((0, 0, 200, band_long - band_short)).convert("L"))
    assert (title_rows < 100).sum() > 50  # and the black title text above it


def test_label_near_the_right_edge_stays_inside():
    img = Image.new("RGB", (200, 100), "white")
    out = draw_points(img, [Point(190, 50, "a long label"), Point(20, 50, "x")])
    width = ImageDraw.Draw(out).textlength("a long label", font=_font(10))
    left_of_marker = out.crop((int(190 - 6 - 3 - width), 40, 190 - 7, 60))
    assert pink(left_of_marker) > 10


def test_marker_colour_constant_matches_the_page():
    assert MARKER_FILL == (255, 0, 102)  # #ff0066 in static/index.html
