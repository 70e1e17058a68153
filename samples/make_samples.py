#!/usr/bin/env python3
"""Generate the bundled mmkb sample collection.

Everything in ``samples/collection/`` is produced by this script from the
text and drawing code below: no third-party content, no network access.
Only PyMuPDF and Pillow are used; fonts are the Base-14 Helvetica faces that
ship inside PyMuPDF, randomness (photo texture) uses a fixed seed.

Outputs
    samples/collection/*.pdf        3 fictional enterprise documents
    samples/collection/*.png|*.jpg  3 standalone images
    samples/questions.json          gold questions (pages are 1-based)
    samples/image_queries.json      text -> image queries

Run:  python samples/make_samples.py
The script verifies itself at the end (every gold answer occurs on exactly
its stated page and nowhere else) and exits non-zero if anything drifted.
"""
from __future__ import annotations

import io
import json
import random
import sys
from pathlib import Path

import numpy as np
import pymupdf
from PIL import Image, ImageDraw, ImageFilter, ImageFont

HERE = Path(__file__).resolve().parent
OUT = HERE / "collection"
MAX_TOTAL_BYTES = 2 * 1024 * 1024
MIN_WORDS_PER_PAGE = 250

# --------------------------------------------------------------------------
# Gold questions. "page" is 1-based. The answer string must occur verbatim
# on that page and on no other page of any PDF in the collection.
# --------------------------------------------------------------------------
SOLAR = "solar-inverter-manual.pdf"
TRAVEL = "employee-travel-policy.pdf"
GREEN = "greenhouse-report-2025.pdf"

QUESTIONS = [
    {"question": "How long is the standard warranty on the Helios SX-400 inverter?",
     "answer": "10 years", "file": SOLAR, "page": 1},
    {"question": "What is the highest DC voltage the Helios SX-400 can accept on its input?",
     "answer": "600 V", "file": SOLAR, "page": 2},
    {"question": "What torque should be used when tightening the inverter's AC terminal screws?",
     "answer": "2.5 Nm", "file": SOLAR, "page": 3},
    {"question": "Which error code does the inverter display when the PV array's insulation resistance is too low?",
     "answer": "E-214", "file": SOLAR, "page": 4},
    {"question": "What is the part number of the replacement cooling fan for the SX-400?",
     "answer": "HX-FAN-77", "file": SOLAR, "page": 5},
    {"question": "Which system do Northwind employees have to use to book flights and hotels?",
     "answer": "TripDesk", "file": TRAVEL, "page": 1},
    {"question": "How much does the company pay when an employee drives their own car on a business trip?",
     "answer": "0.30 EUR per kilometre", "file": TRAVEL, "page": 2},
    {"question": "What is the most the company will pay per night for a hotel in Munich?",
     "answer": "180 EUR", "file": TRAVEL, "page": 3},
    {"question": "How long after a trip do employees have to hand in their expense claim?",
     "answer": "30 calendar days", "file": TRAVEL, "page": 4},
    {"question": "By how much did LED interlighting increase the tomato yield over the season?",
     "answer": "14.2 percent", "file": GREEN, "page": 1},
    {"question": "At what electrical conductivity was the nutrient solution kept during the tomato trial?",
     "answer": "3.2 mS/cm", "file": GREEN, "page": 2},
    {"question": "What was the highest cumulative yield reached by a single greenhouse bay?",
     "answer": "48.6 kg per square metre", "file": GREEN, "page": 3},
    {"question": "When was the tomato leaf miner first found in the greenhouse?",
     "answer": "week 19", "file": GREEN, "page": 4},
    {"question": "How long will it take for the interlighting investment to pay for itself?",
     "answer": "3.4 years", "file": GREEN, "page": 5},
    # Not answerable from the collection. "absent" lists words that must not
    # occur anywhere in the PDFs (not written to questions.json).
    {"question": "What is the daily meal allowance for a business trip to Tokyo?",
     "answer": None, "file": None, "page": None, "absent": ["Tokyo", "Japan"]},
    {"question": "What battery storage capacity can be connected to the Helios SX-400?",
     "answer": None, "file": None, "page": None, "absent": ["battery", "batteries", "storage"]},
]

IMAGE_FILES = {
    "wiring": "pump-control-wiring-diagram.png",
    "chart": "monthly-pv-yield-bar-chart.png",
    "sign": "danger-high-voltage-sign.jpg",
}
IMAGE_QUERIES = [
    {"query": "an electrical wiring diagram", "file": IMAGE_FILES["wiring"]},
    {"query": "a bar chart", "file": IMAGE_FILES["chart"]},
    {"query": "a red warning sign", "file": IMAGE_FILES["sign"]},
]

# --------------------------------------------------------------------------
# Pillow helpers (fonts come from PyMuPDF's built-in Base-14 Helvetica)
# --------------------------------------------------------------------------
_FONT_BUFS = {"regular": pymupdf.Font("helv").buffer, "bold": pymupdf.Font("hebo").buffer}
_FONT_CACHE: dict = {}


def font(size: int, bold: bool = False) -> ImageFont.FreeTypeFont:
    key = (size, bold)
    if key not in _FONT_CACHE:
        buf = _FONT_BUFS["bold" if bold else "regular"]
        _FONT_CACHE[key] = ImageFont.truetype(io.BytesIO(buf), size)
    return _FONT_CACHE[key]


def text_c(d: ImageDraw.ImageDraw, xy, s, size, fill="black", bold=False, anchor="mm"):
    d.text(xy, s, font=font(size, bold), fill=fill, anchor=anchor)


def arrow(d, p0, p1, fill, width=4, head=14):
    d.line([p0, p1], fill=fill, width=width)
    (x0, y0), (x1, y1) = p0, p1
    if x0 == x1:  # vertical
        s = 1 if y1 > y0 else -1
        d.polygon([(x1, y1), (x1 - head / 2, y1 - s * head), (x1 + head / 2, y1 - s * head)], fill=fill)
    else:
        s = 1 if x1 > x0 else -1
        d.polygon([(x1, y1), (x1 - s * head, y1 - head / 2), (x1 - s * head, y1 + head / 2)], fill=fill)


def bar_chart(size, title, labels, series, colors, ylabel, ymax, ystep,
              legend=None, value_fmt=None, bg="white"):
    """Vertical (grouped) bar chart. series: list of lists, one per group member."""
    W, H = size
    img = Image.new("RGB", size, bg)
    d = ImageDraw.Draw(img)
    left, right, top, bottom = 110, W - 40, 90, H - 80
    text_c(d, (W / 2, 40), title, 30, bold=True)
    # grid + y axis
    v = 0.0
    while v <= ymax + 1e-9:
        y = bottom - (bottom - top) * v / ymax
        d.line([(left, y), (right, y)], fill=(220, 220, 220), width=1)
        text_c(d, (left - 12, y), f"{v:g}", 20, fill=(60, 60, 60), anchor="rm")
        v += ystep
    d.line([(left, top - 10), (left, bottom)], fill="black", width=2)
    d.line([(left, bottom), (right, bottom)], fill="black", width=2)
    # rotated y label
    lab = Image.new("RGBA", (400, 40), (0, 0, 0, 0))
    ImageDraw.Draw(lab).text((200, 20), ylabel, font=font(22), fill="black", anchor="mm")
    lab = lab.rotate(90, expand=True)
    img.paste(lab, (18, int((top + bottom) / 2 - 200)), lab)
    # bars
    n, k = len(labels), len(series)
    slot = (right - left) / n
    bw = slot * 0.72 / k
    for i, lbl in enumerate(labels):
        x0 = left + i * slot + slot * 0.14
        for j in range(k):
            val = series[j][i]
            y = bottom - (bottom - top) * val / ymax
            xa = x0 + j * bw
            d.rectangle([xa, y, xa + bw - 3, bottom - 1], fill=colors[j], outline=(40, 40, 40))
            if value_fmt:
                text_c(d, (xa + bw / 2, y - 14), value_fmt(val), 20, bold=True)
        text_c(d, (left + i * slot + slot / 2, bottom + 24), lbl, 21)
    if legend:
        lx = right - 150 * len(legend)
        for j, name in enumerate(legend):
            x = lx + j * 150
            d.rectangle([x, 70, x + 24, 90], fill=colors[j], outline="black")
            d.text((x + 32, 80), name, font=font(20), fill="black", anchor="lm")
    return img


# --------------------------------------------------------------------------
# Figures embedded in the PDFs
# --------------------------------------------------------------------------
def fig_connection_overview() -> Image.Image:
    W, H = 1200, 560
    img = Image.new("RGB", (W, H), "white")
    d = ImageDraw.Draw(img)
    text_c(d, (W / 2, 36), "Helios SX-400 - connection overview", 30, bold=True)
    dc, ac = (230, 120, 0), (0, 140, 70)

    def panel(x, y, label):
        d.rectangle([x, y, x + 170, y + 110], fill=(25, 55, 120), outline="black", width=3)
        for gx in range(1, 4):
            d.line([(x + gx * 170 / 4, y), (x + gx * 170 / 4, y + 110)], fill=(150, 180, 230), width=2)
        for gy in range(1, 3):
            d.line([(x, y + gy * 110 / 3), (x + 170, y + gy * 110 / 3)], fill=(150, 180, 230), width=2)
        text_c(d, (x + 85, y + 132), label, 22, bold=True)

    def box(x0, y0, x1, y1, label, fill, tcol="black", sub=None):
        d.rounded_rectangle([x0, y0, x1, y1], radius=14, fill=fill, outline="black", width=3)
        cy = (y0 + y1) / 2 - (12 if sub else 0)
        text_c(d, ((x0 + x1) / 2, cy), label, 24, fill=tcol, bold=True)
        if sub:
            text_c(d, ((x0 + x1) / 2, cy + 30), sub, 20, fill=tcol)

    panel(40, 100, "PV string 1")
    panel(40, 330, "PV string 2")
    box(300, 220, 460, 340, "DC", (200, 200, 200), sub="isolator")
    box(540, 180, 760, 380, "Helios", (20, 60, 140), tcol="white", sub="SX-400")
    box(840, 110, 1000, 210, "AC breaker", (200, 200, 200), sub="type B 25 A")
    box(840, 250, 1000, 350, "Energy", (235, 235, 235), sub="meter")
    # grid pylon
    px, py = 1090, 260
    d.line([(px, py + 160), (px + 40, py), (px + 80, py + 160)], fill="black", width=4)
    d.line([(px + 10, py + 50), (px + 70, py + 50)], fill="black", width=4)
    d.line([(px + 20, py + 100), (px + 60, py + 100)], fill="black", width=4)
    text_c(d, (px + 40, py + 185), "Grid", 22, bold=True)
    # wiring
    arrow(d, (210, 155), (260, 155), dc, 5)
    d.line([(260, 155), (260, 260)], fill=dc, width=5)
    arrow(d, (258, 260), (300, 260), dc, 5)
    arrow(d, (210, 385), (260, 385), dc, 5)
    d.line([(260, 385), (260, 300)], fill=dc, width=5)
    arrow(d, (258, 300), (300, 300), dc, 5)
    arrow(d, (460, 280), (540, 280), dc, 6)
    text_c(d, (500, 258), "DC", 20, fill=dc, bold=True)
    d.line([(760, 280), (800, 280), (800, 160)], fill=ac, width=6)
    arrow(d, (798, 160), (840, 160), ac, 6)
    arrow(d, (920, 210), (920, 250), ac, 6)
    d.line([(1000, 300), (1060, 300)], fill=ac, width=6)
    arrow(d, (1058, 300), (1100, 300), ac, 6)
    text_c(d, (800, 420), "AC 230 V", 20, fill=ac, bold=True)
    # legend
    d.line([(60, 520), (110, 520)], fill=dc, width=6)
    d.text((120, 520), "DC side (up to 600 V)", font=font(20), fill="black", anchor="lm")
    d.line([(420, 520), (470, 520)], fill=ac, width=6)
    d.text((480, 520), "AC side", font=font(20), fill="black", anchor="lm")
    return img


def fig_travel_spend() -> Image.Image:
    cats = ["Flights", "Hotels", "Rail", "Meals", "Car & taxi"]
    vals = [412, 356, 148, 97, 83]
    cols = [(31, 119, 180), (214, 39, 40), (44, 160, 44), (255, 127, 14), (148, 103, 189)]
    # one bar per category, each in its own colour
    img = Image.new("RGB", (1100, 600), "white")
    chart = bar_chart((1100, 600), "Travel spend by category, FY2024", cats,
                      [vals], [(0, 0, 0)], "thousand EUR", 450, 50,
                      value_fmt=lambda v: f"{v:g}")
    # recolour bars individually
    d = ImageDraw.Draw(chart)
    left, right, top, bottom = 110, 1100 - 40, 90, 600 - 80
    slot = (right - left) / len(cats)
    bw = slot * 0.72
    for i, v in enumerate(vals):
        xa = left + i * slot + slot * 0.14
        y = bottom - (bottom - top) * v / 450
        d.rectangle([xa, y, xa + bw - 3, bottom - 1], fill=cols[i], outline=(40, 40, 40))
    img.paste(chart)
    return img


def greenhouse_weekly():
    weeks = [12, 16, 20, 24, 28, 32, 36, 40]
    base = [0.9, 1.4, 1.8, 2.0, 1.9, 1.7, 1.4, 1.0]
    factor = {"B1": 1.12, "B2": 0.99, "B3": 1.14, "B4": 0.98}
    data = {b: [round(v * f, 2) for v in base] for b, f in factor.items()}
    return weeks, data


def fig_greenhouse_yield() -> Image.Image:
    weeks, data = greenhouse_weekly()
    cols = [(0, 150, 60), (160, 160, 160), (0, 100, 200), (90, 90, 90)]
    return bar_chart((1200, 620), "Weekly yield per bay (kg/m2)",
                     [f"wk {w}" for w in weeks], [data[b] for b in ("B1", "B2", "B3", "B4")],
                     cols, "kg per m2 per week", 2.5, 0.5,
                     legend=["B1 LED", "B2 ctrl", "B3 LED", "B4 ctrl"])


# --------------------------------------------------------------------------
# Standalone images
# --------------------------------------------------------------------------
def img_wiring_diagram() -> Image.Image:
    W, H = 800, 560
    img = Image.new("RGB", (W, H), (250, 250, 245))
    d = ImageDraw.Draw(img)
    for x in range(0, W, 20):
        d.line([(x, 0), (x, H)], fill=(225, 232, 240))
    for y in range(0, H, 20):
        d.line([(0, y), (W, y)], fill=(225, 232, 240))
    text_c(d, (W / 2, 32), "Pump control circuit - wiring diagram", 26, bold=True)
    brown, blue, gy, blk, red = (130, 70, 20), (20, 70, 200), (40, 150, 40), (0, 0, 0), (210, 30, 30)
    # supply rails
    d.line([(60, 90), (740, 90)], fill=brown, width=5)
    d.line([(60, 480), (740, 480)], fill=blue, width=5)
    d.line([(60, 520), (740, 520)], fill=gy, width=5)
    for y, lab, c in [(90, "L1", brown), (480, "N", blue), (520, "PE", gy)]:
        text_c(d, (36, y), lab, 22, fill=c, bold=True)
    # branch 1: fuse -> stop -> start -> contactor coil
    x = 200
    d.line([(x, 90), (x, 130)], fill=brown, width=4)
    d.rectangle([x - 14, 130, x + 14, 190], outline=blk, width=3)  # fuse
    d.line([(x, 130), (x, 190)], fill=blk, width=2)
    d.text((x + 24, 160), "F1 6A", font=font(20), fill=blk, anchor="lm")
    d.line([(x, 190), (x, 220)], fill=blk, width=4)
    # stop NC switch
    d.line([(x, 220), (x + 22, 255)], fill=blk, width=4)
    d.line([(x - 10, 250), (x + 26, 250)], fill=red, width=3)
    d.text((x + 32, 240), "S1 STOP", font=font(18), fill=red, anchor="lm")
    d.line([(x, 255), (x, 285)], fill=blk, width=4)
    # start NO switch
    d.line([(x, 285), (x - 22, 315)], fill=blk, width=4)
    d.text((x - 30, 300), "S2 START", font=font(18), fill=(0, 120, 0), anchor="rm")
    d.line([(x, 320), (x, 360)], fill=blk, width=4)
    # coil
    d.rectangle([x - 30, 360, x + 30, 410], outline=blk, width=3, fill=(255, 255, 255))
    text_c(d, (x, 385), "K1", 22, bold=True)
    d.line([(x, 410), (x, 480)], fill=blue, width=4)
    # self-hold contact
    d.line([(x, 275), (x + 80, 275), (x + 80, 288)], fill=blk, width=3)
    d.line([(x + 80, 288), (x + 58, 318)], fill=blk, width=3)
    d.line([(x + 80, 322), (x + 80, 340), (x, 340)], fill=blk, width=3)
    d.text((x + 92, 305), "K1 13-14", font=font(16), fill=blk, anchor="lm")
    for py in (275, 340):
        d.ellipse([x - 5, py - 5, x + 5, py + 5], fill=blk)
    # branch 2: contactor main contact -> thermal overload -> motor
    x = 520
    d.line([(x, 90), (x, 140)], fill=brown, width=4)
    d.line([(x, 140), (x - 22, 175)], fill=blk, width=4)
    d.text((x + 20, 160), "K1 1-2", font=font(18), fill=blk, anchor="lm")
    d.line([(x, 180), (x, 220)], fill=blk, width=4)
    d.rectangle([x - 20, 220, x + 20, 270], outline=blk, width=3)
    d.line([(x - 10, 235), (x + 10, 235), (x + 10, 255), (x - 10, 255)], fill=red, width=2)
    d.text((x + 30, 245), "Q1 overload 4A", font=font(18), fill=blk, anchor="lm")
    d.line([(x, 270), (x, 330)], fill=brown, width=4)
    d.ellipse([x - 45, 330, x + 45, 420], outline=blk, width=4, fill=(255, 250, 220))
    text_c(d, (x, 375), "M", 34, bold=True)
    d.text((x - 55, 365), "M1 pump motor", font=font(18), fill=blk, anchor="rm")
    d.text((x - 55, 388), "0.75 kW", font=font(18), fill=blk, anchor="rm")
    d.line([(x, 420), (x, 480)], fill=blue, width=4)
    d.line([(x + 30, 410), (x + 30, 520)], fill=gy, width=3)
    # pilot lamp branch
    x = 680
    d.line([(x, 90), (x, 330)], fill=brown, width=4)
    d.ellipse([x - 22, 330, x + 22, 374], outline=blk, width=3, fill=(255, 255, 255))
    d.line([(x - 15, 337), (x + 15, 367)], fill=blk, width=3)
    d.line([(x + 15, 337), (x - 15, 367)], fill=blk, width=3)
    d.text((x + 30, 352), "H1 RUN", font=font(16), fill=blk, anchor="lm")
    d.line([(x, 374), (x, 480)], fill=blue, width=4)
    for px, py in [(200, 90), (520, 90), (680, 90), (200, 480), (520, 480), (680, 480), (550, 520)]:
        d.ellipse([px - 6, py - 6, px + 6, py + 6], fill=blk)
    d.rectangle([560, 536, 790, 556], fill=(250, 250, 245))
    d.text((785, 546), "Drawing E-07 rev B", font=font(14), fill=(80, 80, 80), anchor="rm")
    return img


def img_bar_chart() -> Image.Image:
    months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
    kwh = [142, 210, 365, 480, 590, 620, 640, 560, 430, 290, 160, 118]
    img = bar_chart((800, 500), "Monthly PV energy yield 2024", months, [kwh],
                    [(242, 142, 28)], "kWh", 700, 100)
    return img


def img_danger_sign() -> Image.Image:
    rng = random.Random(20250101)
    W, H = 640, 480
    # concrete wall: coarse blotches + fine grain + lighting gradient
    coarse = Image.frombytes("L", (40, 30), rng.randbytes(40 * 30)).resize((W, H), Image.BICUBIC)
    fine = Image.frombytes("L", (W, H), rng.randbytes(W * H))
    tex = Image.blend(coarse, fine, 0.35).point(lambda v: 118 + v * 60 // 255)
    grad = Image.linear_gradient("L").rotate(-35, expand=False).resize((W, H))
    base = Image.merge("RGB", (tex, tex.point(lambda v: v - 2), tex.point(lambda v: v - 8)))
    shade = Image.new("RGB", (W, H), (40, 38, 36))
    wall = Image.composite(shade, base, grad.point(lambda v: v * 90 // 255))
    d = ImageDraw.Draw(wall)
    # grey conduit pipe on the right
    for i in range(34):
        c = 95 + int(90 * (1 - abs(i - 12) / 22))
        d.line([(560 + i, 0), (560 + i, H)], fill=(c, c, c + 4))
    for y in (70, 390):
        d.rectangle([552, y, 602, y + 18], fill=(120, 120, 125), outline=(70, 70, 70))
    # drop shadow of the sign
    x0, y0, x1, y1 = 140, 110, 480, 370
    sh = Image.new("L", (W, H), 0)
    ImageDraw.Draw(sh).rounded_rectangle([x0 + 12, y0 + 14, x1 + 12, y1 + 14], 16, fill=150)
    sh = sh.filter(ImageFilter.GaussianBlur(9))
    wall = Image.composite(Image.new("RGB", (W, H), (20, 20, 20)), wall, sh)
    d = ImageDraw.Draw(wall)
    # the sign: white border, red field, yellow triangle with lightning bolt
    d.rounded_rectangle([x0, y0, x1, y1], 16, fill=(245, 245, 240))
    d.rounded_rectangle([x0 + 10, y0 + 10, x1 - 10, y1 - 10], 10, fill=(200, 20, 25))
    cx = (x0 + x1) / 2
    d.polygon([(cx, y0 + 24), (cx - 52, y0 + 112), (cx + 52, y0 + 112)], fill=(255, 210, 0), outline="black")
    d.polygon([(cx + 6, y0 + 46), (cx - 14, y0 + 82), (cx - 1, y0 + 82), (cx - 8, y0 + 104),
               (cx + 14, y0 + 70), (cx + 1, y0 + 70)], fill="black")
    text_c(d, (cx, y0 + 160), "DANGER", 58, fill="white", bold=True)
    text_c(d, (cx, y0 + 218), "HIGH VOLTAGE", 38, fill="white", bold=True)
    for sx, sy in [(x0 + 22, y0 + 22), (x1 - 22, y0 + 22), (x0 + 22, y1 - 22), (x1 - 22, y1 - 22)]:
        d.ellipse([sx - 6, sy - 6, sx + 6, sy + 6], fill=(170, 170, 170), outline=(90, 90, 90))
        d.line([(sx - 4, sy), (sx + 4, sy)], fill=(80, 80, 80), width=2)
    # subtle camera softness and vignette
    wall = wall.filter(ImageFilter.GaussianBlur(0.7))
    vig = Image.radial_gradient("L").resize((W, H)).point(lambda v: max(0, v - 110) * 90 // 145)
    wall = Image.composite(Image.new("RGB", (W, H), (0, 0, 0)), wall, vig)
    return wall


# --------------------------------------------------------------------------
# Document text. Blocks: ("p", text) | ("table", widths, rows) | ("fig", fn, caption)
# --------------------------------------------------------------------------
DOCS = [
    {
        "file": SOLAR,
        "title": "Helios SX-400 String Inverter - Installation and Maintenance Manual",
        "org": "Brightwater Energy Systems",
        "subject": "Installation, commissioning and maintenance of the Helios SX-400 PV inverter",
        "pages": [
            ("1. About This Manual and Safety", [
                ("p", "This manual describes the installation, commissioning and routine maintenance of the "
                      "Helios SX-400 string inverter manufactured by Brightwater Energy Systems. The SX-400 "
                      "converts direct current from a photovoltaic array into grid-compliant alternating current "
                      "and is intended for residential and light commercial rooftops with a rated output of "
                      "4.0 kW. Read the complete manual before starting any work, and keep it accessible near the "
                      "installation site for service personnel."),
                ("p", "Only qualified electricians who have completed the Brightwater installer certification may "
                      "install or open the inverter. Work on the device involves lethal voltages on both the DC and "
                      "the AC side. Even after the inverter has been disconnected, the internal DC link capacitors "
                      "can hold a dangerous charge. After isolating the unit, wait at least five minutes before "
                      "removing the front cover, and confirm the absence of voltage with a calibrated two-pole "
                      "tester."),
                ("p", "The following signal words are used throughout this document. A DANGER notice marks a "
                      "hazard that will cause death or serious injury if it is not avoided. A WARNING notice marks "
                      "a hazard that could cause serious injury. A NOTICE marks a situation that could damage the "
                      "equipment or reduce the energy yield but poses no risk to people."),
                ("p", "The SX-400 is covered by a standard warranty of 10 years from the date of commissioning, "
                      "provided the unit was installed by a certified installer and registered in the Brightwater "
                      "service portal within 60 days. The warranty does not cover damage caused by lightning, "
                      "flooding, incorrect DC wiring, or modifications to the firmware that were not released by "
                      "the manufacturer. Keep the commissioning report, including the serial number and the "
                      "measured insulation values, because it is required for any warranty claim."),
                ("p", "This edition of the manual applies to hardware revision C and firmware version 2.3 or "
                      "later. If the type label on the side of your unit shows an earlier revision, request the "
                      "matching manual from your distributor. Illustrations are schematic and may differ slightly "
                      "from the delivered product."),
            ]),
            ("2. Technical Specifications", [
                ("p", "The Helios SX-400 is a transformerless, single-phase inverter with two independent maximum "
                      "power point trackers (MPPT). Each tracker accepts one string of modules, which allows arrays "
                      "on two roof faces with different orientations to be combined without mismatch losses. The "
                      "table below lists the most important electrical and mechanical data. Values apply at an "
                      "ambient temperature of 25 °C unless stated otherwise."),
                ("table", [250, 225], [
                    ["Parameter", "Value"],
                    ["Rated AC output power", "4.0 kW"],
                    ["Maximum DC input voltage", "600 V"],
                    ["MPPT operating voltage range", "120 to 550 V"],
                    ["Maximum input current per MPPT", "13 A"],
                    ["Nominal grid connection", "230 V, 50 Hz, single-phase"],
                    ["Peak efficiency", "97.6 %"],
                    ["Enclosure protection rating", "IP65"],
                    ["Weight", "17.5 kg"],
                    ["Operating temperature range", "-25 °C to +60 °C"],
                ]),
                ("p", "The maximum DC input voltage is 600 V. This limit must never be exceeded, not even on the "
                      "coldest morning of the year, because the open-circuit voltage of crystalline modules rises "
                      "as the cell temperature drops. When sizing a string, calculate the open-circuit voltage at "
                      "the lowest expected site temperature using the temperature coefficient from the module data "
                      "sheet, and keep a safety margin of at least five percent. A string that exceeds the limit can "
                      "permanently damage the input stage, and such damage is excluded from the warranty."),
                ("p", "Above an ambient temperature of 45 °C the inverter gradually reduces its output power to "
                      "protect the power electronics. This derating is normal behaviour and is recorded in the "
                      "event log. To minimise derating, avoid mounting the unit in direct afternoon sunlight or in "
                      "closed attic spaces without ventilation."),
                ("p", "The SX-400 communicates through an integrated Wi-Fi module and an RS-485 port. Monitoring "
                      "data is uploaded to the Brightwater Cloud at regular intervals, and the RS-485 port can be "
                      "used to connect an external energy meter for export limitation. Both interfaces can be used at "
                      "the same time. The display on the front panel shows the current output power, the energy fed "
                      "in today and in total, and the status of each tracker."),
            ]),
            ("3. Mechanical and Electrical Installation", [
                ("p", "Choose a mounting location that is protected from direct rain and snow where possible and "
                      "that remains accessible for later maintenance. The wall must be able to carry at least four "
                      "times the weight of the inverter. Mount the unit vertically with the cable glands pointing "
                      "downwards. Keep at least 30 cm of free space above and below the housing and 20 cm on either "
                      "side, so that the cooling air can circulate. When several inverters are installed next to "
                      "each other, do not stack them vertically, because the warm exhaust air of the lower unit "
                      "would raise the intake temperature of the upper one."),
                ("p", "Fix the wall bracket with the four supplied stainless steel anchors, hang the inverter onto "
                      "the bracket, and secure it with the locking screw at the bottom edge. Before connecting any "
                      "cables, make sure that the DC isolator on the right side of the housing is in the OFF "
                      "position."),
                ("p", "Connect the AC cable first. Use a copper cable with a cross-section of at least 4 mm². Strip "
                      "the conductors, insert them into the AC terminal block and tighten the terminal screws to a "
                      "torque of 2.5 Nm. Connect the protective earth conductor before line and neutral. Each "
                      "inverter requires its own miniature circuit breaker of type B with a rating of 25 A; do not "
                      "connect other loads to this circuit."),
                ("p", "Then connect the PV strings using the supplied MC4-compatible connectors. Check the polarity "
                      "of every string with a multimeter before plugging it in: a reversed string will not damage "
                      "the inverter immediately, but it prevents start-up and is reported as a fault. Figure 1 shows "
                      "the complete connection sequence from the PV array to the grid connection point."),
                ("fig", fig_connection_overview, "Figure 1: Connection overview of the Helios SX-400"),
            ]),
            ("4. Commissioning and Error Codes", [
                ("p", "After all connections have been checked, switch on the AC circuit breaker and then turn the "
                      "DC isolator to ON. The display lights up and the inverter runs a self-test, which takes about "
                      "two minutes. During the self-test the inverter measures the insulation resistance of the PV "
                      "array against earth and checks the grid voltage and frequency. If all values are within the "
                      "limits of the selected country profile, the inverter connects to the grid and the green "
                      "status LED lights continuously."),
                ("p", "On first start-up the installer must select the country profile with the arrow keys. The "
                      "profile defines the grid protection settings required by the local network operator and "
                      "cannot be changed later without the installer password. Then connect the inverter to the "
                      "customer's wireless network using the Brightwater Installer app and register the unit in the "
                      "service portal."),
                ("p", "If a fault occurs, the red LED lights up and an error code appears on the display. The table "
                      "below lists the most common codes. Codes that are not listed here should be reported to "
                      "Brightwater technical support together with the serial number and a photo of the display."),
                ("table", [60, 185, 230], [
                    ["Code", "Meaning", "Action"],
                    ["E-101", "Grid voltage out of range", "Check grid connection, wait for reconnect"],
                    ["E-214", "Insulation resistance too low", "Inspect PV cables and connectors"],
                    ["E-305", "Over-temperature", "Improve ventilation, clean air filter"],
                    ["E-412", "Communication module fault", "Restart inverter, update firmware"],
                ]),
                ("p", "Error E-214 is the most frequent fault after heavy rain. It usually means that water has "
                      "entered a damaged connector or that the insulation of a cable was crushed during "
                      "installation. Do not reset the inverter repeatedly; locate the fault with an insulation "
                      "tester first, and repair or replace the affected component before switching the DC side "
                      "back on. Over-temperature faults usually disappear on their own once the housing has cooled "
                      "down, but they indicate that the location or the air filter needs attention."),
            ]),
            ("5. Maintenance and Spare Parts", [
                ("p", "The Helios SX-400 is designed for low maintenance, but a yearly inspection keeps the energy "
                      "yield high and helps to detect problems early. Clean the air intake filter on the underside "
                      "of the housing every six months, or more often in dusty environments such as farms or "
                      "construction sites. A clogged filter is the most common cause of over-temperature "
                      "derating."),
                ("p", "During the annual inspection check the housing and the cable glands for cracks, the DC "
                      "connectors for discolouration, the tightness of the AC terminals, and the event log for "
                      "recurring warnings. Compare the energy yield of the past twelve months with the forecast from "
                      "the planning software; a deviation of more than ten percent should be investigated."),
                ("p", "The internal cooling fan has an expected service life of about 50,000 operating hours. If "
                      "the fan becomes noisy or the display reports a fan warning, replace it with the original "
                      "spare part HX-FAN-77. The replacement takes about a quarter of an hour and requires only a "
                      "T20 screwdriver. Using fans that are not original parts voids the warranty of the power "
                      "stage."),
                ("p", "Firmware updates are distributed through the Brightwater Cloud and installed automatically at "
                      "night, when the inverter is not feeding power into the grid. The installer can disable "
                      "automatic updates in the service menu, for example when the plant takes part in a certified "
                      "grid-support scheme that requires a fixed firmware version."),
                ("p", "At the end of its service life the inverter must be disposed of as electronic waste according "
                      "to local regulations. Brightwater takes back old units free of charge through its distributor "
                      "network and recycles the aluminium housing and the copper components. Remove the unit only "
                      "after both the DC and AC sides have been isolated and the waiting time described in Section 1 "
                      "has passed."),
            ]),
        ],
    },
    {
        "file": TRAVEL,
        "title": "Employee Travel and Expense Policy (HR-07)",
        "org": "Northwind Logistics GmbH",
        "subject": "Company rules for business travel and reimbursement of travel expenses",
        "pages": [
            ("1. Purpose, Scope and Approval", [
                ("p", "This policy sets out the rules for business travel and the reimbursement of travel expenses "
                      "for all employees of Northwind Logistics GmbH and its German subsidiaries. It aims to keep "
                      "travel safe and cost-effective while treating employees fairly. The policy applies to "
                      "permanent and temporary staff, interns, and contractors who travel on behalf of the company, "
                      "unless their contract states otherwise. It takes effect on 1 January 2025 and replaces all "
                      "earlier travel guidelines."),
                ("p", "Business travel should be the exception rather than the rule. Before planning a trip, "
                      "consider whether the purpose can be achieved through a video conference. If travel is "
                      "necessary, combine several appointments into one trip where possible, and travel on the same "
                      "day when the total journey time does not exceed eight hours."),
                ("p", "Every business trip requires prior approval. Trips within Germany lasting up to three days "
                      "are approved by the employee's line manager. Longer domestic trips and all international "
                      "trips must additionally be approved by the head of department. Trips to countries with an "
                      "elevated travel warning require the written consent of the Chief Operating Officer and a "
                      "briefing by the security team before departure."),
                ("p", "All flights, rail tickets, rental cars and hotels must be booked through the corporate travel "
                      "portal TripDesk. Bookings made through the portal are automatically checked against this "
                      "policy, charged to the central company account, and covered by the company's travel "
                      "insurance. Bookings made privately are reimbursed only if the portal could not offer a "
                      "comparable option, and the employee must document this in the expense claim."),
                ("p", "Employees are responsible for carrying valid travel documents, including passports and visas. "
                      "Visa fees and vaccination costs required for a business trip are reimbursed in full. Lost or "
                      "stolen documents must be reported to the travel office immediately, so that replacement "
                      "bookings can be arranged."),
            ]),
            ("2. Transport", [
                ("p", "Rail is the preferred means of transport for journeys within Germany and to neighbouring "
                      "countries when the travel time by train is less than five hours. Employees travel in second "
                      "class; first class is permitted for journeys longer than three hours or when the employee "
                      "works on the train and needs a quiet environment. The company provides a BahnCard 50 to "
                      "employees who travel by rail more than twelve times per year."),
                ("p", "Flights are booked in economy class. For flights with a scheduled duration of more than six "
                      "hours, premium economy may be booked. Business class requires the approval of the managing "
                      "director and is generally limited to overnight flights of more than nine hours that are "
                      "followed directly by a working day. Employees should book as early as possible, and "
                      "non-refundable fares are preferred when the travel dates are certain."),
                ("p", "Rental cars are booked in the compact or intermediate category. Larger vehicles may be booked "
                      "when three or more employees travel together or when equipment must be transported. Fill up "
                      "the tank before returning the car, since refuelling charges of the rental company are not "
                      "reimbursed."),
                ("p", "If an employee uses a private car for business travel with prior approval, the company "
                      "reimburses 0.30 EUR per kilometre driven. This allowance covers fuel, wear and insurance; "
                      "parking fees and tolls are reimbursed separately against receipts. Fines for traffic or "
                      "parking offences are never reimbursed. Employees who regularly drive their own car for "
                      "business purposes must confirm once a year that their vehicle insurance covers business "
                      "use."),
                ("p", "Taxis and ride-hailing services may be used when public transport is not reasonably "
                      "available, for example late at night, with heavy luggage, or when time is critical. The "
                      "reason must be stated in the expense claim."),
            ]),
            ("3. Accommodation", [
                ("p", "Employees should stay in mid-range business hotels that are conveniently located for their "
                      "appointments. Hotels are booked through the corporate travel portal, which shows the "
                      "negotiated company rates first. The nightly caps in the table below apply to the room rate "
                      "including VAT but excluding breakfast. They apply per person and night; employees travelling "
                      "together should not share rooms unless they choose to."),
                ("table", [250, 225], [
                    ["City", "Nightly cap (room only)"],
                    ["Munich", "180 EUR"],
                    ["Frankfurt am Main", "170 EUR"],
                    ["Hamburg", "160 EUR"],
                    ["Berlin", "150 EUR"],
                    ["Other cities in Germany", "120 EUR"],
                    ["London", "210 GBP"],
                    ["Paris", "200 EUR"],
                ]),
                ("p", "During major trade fairs and large public events, hotel prices can rise far above the usual "
                      "level. In these periods the caps may be exceeded by up to 50 percent if the travel office "
                      "confirms that no cheaper suitable hotel was available. Any higher rate requires the approval "
                      "of the head of department before the booking is made."),
                ("p", "For stays of more than fourteen consecutive nights in the same place, a serviced apartment is "
                      "usually cheaper and more comfortable than a hotel. The travel office will compare offers and "
                      "book the most economical option. If an employee stays privately with friends or family "
                      "instead of in a hotel, a flat allowance of 20 EUR per night is paid without receipts."),
                ("p", "Cancellation deadlines must be observed. Costs for rooms that were not cancelled in time are "
                      "reimbursed only if the trip was cancelled or shortened for business reasons or because of "
                      "illness. Minibar items, pay-TV and other personal extras are always paid by the employee. "
                      "Hotel loyalty points may be collected privately, but they must never influence the choice "
                      "of hotel when a cheaper suitable hotel is available in the portal."),
            ]),
            ("4. Meals, Expenses and Claims", [
                ("p", "For each day of a business trip within Germany, employees receive a daily meal allowance in "
                      "line with German tax rules: 28 EUR for a full day of absence, and 14 EUR for the day of "
                      "arrival and the day of departure. If meals are provided free of charge, for example "
                      "breakfast included in the hotel rate or lunch at a customer's site, the allowance is reduced "
                      "by 20 percent for breakfast and by 40 percent each for lunch and dinner. International rates "
                      "follow the official country tables published by the Federal Ministry of Finance."),
                ("p", "Expense claims must be submitted through the expense module of the HR portal within 30 "
                      "calendar days after the end of the trip. Claims submitted later are reimbursed only in "
                      "exceptional cases approved by the finance department. Original receipts are required for "
                      "every item above 25 EUR; photographs of receipts taken with the expense app are accepted. "
                      "Reimbursement is paid with the next monthly salary run."),
                ("p", "Frequent travellers receive a corporate credit card. The card may only be used for business "
                      "expenses, and every transaction must be matched with a receipt in the expense module. "
                      "Private use of the card, even if repaid, is a breach of this policy."),
                ("p", "The finance department analyses travel spending every year. Figure 1 shows the distribution "
                      "of travel spend in the 2024 financial year. Flights and hotels together accounted for about "
                      "70 percent of the total, which is why the negotiated hotel rates and early booking of flights "
                      "have the greatest savings potential."),
                ("fig", fig_travel_spend, "Figure 1: Travel spend by category, FY2024 (thousand EUR)"),
            ]),
        ],
    },
    {
        "file": GREEN,
        "title": "LED Interlighting in Greenhouse Tomatoes - Trial Report 2025",
        "org": "Lindqvist Horticultural Research Station",
        "subject": "Results of a one-season trial with supplementary LED interlighting in tomato production",
        "pages": [
            ("1. Summary", [
                ("p", "This report presents the results of a one-season trial carried out at the Lindqvist "
                      "Horticultural Research Station between January and October 2025. The trial examined whether "
                      "supplementary LED interlighting, installed between the crop rows, increases the yield and "
                      "quality of greenhouse tomatoes compared with conventional top lighting using high-pressure "
                      "sodium lamps. The trial was funded by the regional growers' association and carried out in "
                      "close cooperation with three commercial growers, who also advised on crop management."),
                ("p", "The cherry-vine cultivar Rubino F1 was grown in four identical greenhouse bays with a floor "
                      "area of 480 square metres each. Two bays received interlighting in addition to reduced top "
                      "lighting, while the two control bays were lit with top lighting only. All other conditions, "
                      "including climate set points, irrigation and crop protection, were kept the same across the "
                      "bays."),
                ("p", "Across the whole season, the interlit bays achieved an average yield increase of 14.2 percent "
                      "compared with the control bays. The share of class I fruit rose as well, mainly because fruit "
                      "in the lower part of the canopy ripened more evenly. Total electricity consumption for "
                      "lighting was slightly lower in the interlit bays, because the top lighting could be dimmed "
                      "during bright periods without reducing the light that reaches the leaves inside the "
                      "canopy."),
                ("p", "Based on these results, the station recommends interlighting to growers who already use "
                      "supplementary lighting and are planning to replace ageing lamps. The economic assessment in "
                      "Section 5 shows that the investment pays for itself within a few years at current "
                      "electricity prices. Further trials are planned for 2026 to test interlighting with other "
                      "cultivars and with dynamic light recipes that follow the daily solar radiation."),
            ]),
            ("2. Materials and Methods", [
                ("p", "The trial was carried out in bays B1 to B4 of the station's Venlo-type glasshouse. Each bay "
                      "has a gutter height of 6 m, diffuse glass and a thermal screen. Bays B1 and B3 were equipped "
                      "with two rows of LED interlighting modules per double row of plants, mounted at 0.8 m and "
                      "1.4 m above the growing substrate and emitting mainly red light with a small blue fraction. "
                      "Bays B2 and B4 served as controls without interlighting."),
                ("p", "Top lighting in all bays consisted of high-pressure sodium lamps. In the interlit bays the "
                      "installed top lighting intensity was reduced by one third, so that the total installed "
                      "lighting power was similar in all four bays. Lamps were switched by a light-sum controller "
                      "and were off whenever outside radiation exceeded 250 watts per square metre."),
                ("p", "Plants were grafted onto a vigorous rootstock and planted on 8 January 2025 in stone wool "
                      "slabs at a density of 2.8 stems per square metre. Climate set points were 21 °C during the "
                      "day and 17 °C at night, and carbon dioxide was enriched to 800 ppm while the vents were "
                      "closed. Pollination was carried out by bumblebees."),
                ("p", "Irrigation was controlled by a drain-based irrigation computer. The nutrient solution was kept "
                      "at an electrical conductivity of 3.2 mS/cm and a pH of 5.6 throughout the season, and the "
                      "drain water was disinfected with ultraviolet light and recirculated."),
                ("p", "Yield was recorded weekly by harvesting all ripe trusses from 40 marked stems per bay and "
                      "grading the fruit into class I, class II and waste. Sugar content was measured every four "
                      "weeks with a digital refractometer. The electricity consumption of the lighting was metered "
                      "separately for each bay. Differences between treatments were tested with a mixed model, "
                      "using the harvest week as a repeated factor."),
            ]),
            ("3. Results: Yield", [
                ("p", "Harvest started in week 11 and continued until the crop was removed in week 42. In the first "
                      "weeks of the harvest the difference between treatments was small, because the young plants "
                      "had not yet formed a dense canopy and most of the top light still reached the lower leaves. "
                      "From week 16 onwards the interlit bays produced consistently more fruit, and the advantage "
                      "remained stable throughout the summer, when the lamps were switched off for most of the day."),
                ("p", "Bay B3 reached the highest cumulative yield of the trial with 48.6 kg per square metre, closely "
                      "followed by bay B1 at 47.9 kg. The control bays B2 and B4 produced 42.4 and 42.1 kg, "
                      "respectively. Averaged over both bays of each treatment, interlighting therefore increased "
                      "the yield from 42.25 to 48.25 kg per square metre. The difference was statistically "
                      "significant, and the two replicate bays of each treatment agreed closely."),
                ("p", "Figure 1 shows the weekly yield of each bay for selected weeks. The interlit bays B1 and B3 "
                      "are shown in green and blue, the control bays in grey. The seasonal pattern, with a peak in "
                      "early summer and a gradual decline in autumn, was the same in all bays, which indicates that "
                      "the additional yield came from better light distribution rather than from a shift in the "
                      "timing of the harvest. Fruit weight per truss was also higher under interlighting, while the "
                      "number of trusses per stem did not differ between treatments. Average fruit weight was "
                      "about 19 grams in all bays."),
                ("fig", fig_greenhouse_yield, "Figure 1: Weekly yield per greenhouse bay"),
            ]),
            ("4. Results: Fruit Quality, Energy Use and Crop Health", [
                ("p", "Fruit quality was assessed by the share of class I fruit and by the sugar content, measured "
                      "in degrees Brix. Both indicators were slightly better under interlighting. The main reason "
                      "was a more uniform ripening of the lower trusses, which in the control bays often stayed "
                      "partly green and had to be graded as class II. The table below summarises the results for "
                      "the whole season, together with the metered lighting electricity of each bay."),
                ("table", [55, 120, 100, 70, 130], [
                    ["Bay", "Treatment", "Class I share", "Brix", "Lighting kWh/m2"],
                    ["B1", "Interlighting", "93.1 %", "8.4", "262"],
                    ["B2", "Control", "89.4 %", "8.1", "279"],
                    ["B3", "Interlighting", "93.8 %", "8.5", "258"],
                    ["B4", "Control", "88.9 %", "8.0", "281"],
                ]),
                ("p", "The interlit bays used on average 7 percent less electricity for lighting per square metre, "
                      "because the top lamps could be dimmed more often. Combined with the higher yield, the "
                      "electricity used per kilogram of fruit fell from 6.6 kWh in the control bays to 5.4 kWh in the "
                      "interlit bays. This is the most important result for growers facing high energy prices."),
                ("p", "Crop health was monitored weekly by the station's scouting team. The tomato leaf miner Tuta "
                      "absoluta was first detected in week 19 in a pheromone trap in bay B2 and was kept below the "
                      "damage threshold in all bays by releasing the predatory bug Macrolophus pygmaeus. Powdery "
                      "mildew appeared late in the season in all bays, without any difference between treatments. "
                      "No leaf damage caused by the interlighting modules was observed, even on leaves in direct "
                      "contact with the modules. Botrytis stem lesions were rare and occurred mainly after leaf "
                      "picking in humid weather; they were treated by removing the affected tissue. Overall, the "
                      "crop remained healthy until the end of the season, and no plants had to be replaced."),
            ]),
            ("5. Economic Assessment and Recommendations", [
                ("p", "The interlighting system cost 58 EUR per square metre of greenhouse floor, including the LED "
                      "modules, drivers, cabling and installation. The additional yield of 6 kg per square metre "
                      "was valued at an average farm-gate price of 2.10 EUR per kilogram for cherry-vine "
                      "tomatoes, and the electricity saving of 20 kWh per square metre at 0.22 EUR per kWh. Together "
                      "this gives an annual benefit of about 17 EUR per square metre, and a simple payback period of "
                      "3.4 years. The expected service life of the LED modules is at least ten seasons."),
                ("p", "The calculation is sensitive to the electricity price and to the price of tomatoes. If "
                      "electricity becomes cheaper, the saving on lighting costs shrinks, but the value of the "
                      "extra yield remains. Growers who already operate high-pressure sodium lamps that are close to "
                      "the end of their life benefit most, because part of the investment would be needed anyway."),
                ("p", "Based on the trial, the station makes the following recommendations. First, install "
                      "interlighting in combination with dimmable top lighting, so that the total light level can be "
                      "adjusted to the outside radiation. Second, mount the modules at two heights so that the "
                      "middle and lower canopy receive light. Third, adjust the leaf-picking strategy, because "
                      "interlit plants keep productive leaves lower in the canopy for longer."),
                ("p", "The station will repeat the trial in 2026 with two additional cultivars, including a large "
                      "beef tomato, and will test light recipes that change the spectrum during the day. Growers "
                      "who would like to visit the trial bays or receive the detailed data set can contact the "
                      "station's advisory service."),
            ]),
        ],
    },
]

# --------------------------------------------------------------------------
# PDF layout
# --------------------------------------------------------------------------
PAGE_W, PAGE_H = 595, 842  # A4 in points
MARGIN_L, MARGIN_R = 60, 60
BODY_TOP, BODY_BOTTOM = 96, 790
TEXT_W = PAGE_W - MARGIN_L - MARGIN_R
BODY_FONT, BOLD_FONT = "helv", "hebo"
BODY_SIZE, LEADING = 10.5, 14.6
GREY = (0.4, 0.4, 0.4)
PROTECT = "\x00"  # stands in for spaces inside protected phrases while wrapping

PROTECTED = [q["answer"] for q in QUESTIONS if q["answer"] and " " in q["answer"]]


def wrap(text: str, fontname: str, size: float, width: float) -> list[str]:
    """Greedy word wrap. Gold answer phrases are never split across lines."""
    for ph in PROTECTED:
        text = text.replace(ph, ph.replace(" ", PROTECT))
    lines, cur = [], ""
    for word in text.split(" "):
        cand = f"{cur} {word}" if cur else word
        if pymupdf.get_text_length(cand.replace(PROTECT, " "), fontname=fontname, fontsize=size) <= width or not cur:
            cur = cand
        else:
            lines.append(cur)
            cur = word
    if cur:
        lines.append(cur)
    return [ln.replace(PROTECT, " ") for ln in lines]


class Layout:
    def __init__(self, page):
        self.page = page
        self.y = BODY_TOP

    def need(self, h):
        if self.y + h > BODY_BOTTOM:
            raise RuntimeError(f"page {self.page.number + 1} overflows (y={self.y:.0f}, need {h:.0f})")

    def heading(self, text):
        self.need(30)
        self.page.insert_text((MARGIN_L, self.y + 14), text, fontname=BOLD_FONT, fontsize=15,
                              color=(0.05, 0.2, 0.45))
        self.y += 32

    def para(self, text):
        lines = wrap(text, BODY_FONT, BODY_SIZE, TEXT_W)
        self.need(len(lines) * LEADING)
        for ln in lines:
            self.page.insert_text((MARGIN_L, self.y + BODY_SIZE), ln, fontname=BODY_FONT, fontsize=BODY_SIZE)
            self.y += LEADING
        self.y += 7

    def table(self, widths, rows):
        assert abs(sum(widths) - TEXT_W) < 1, (sum(widths), TEXT_W)
        rh = 17
        self.need(rh * len(rows) + 10)
        self.page.draw_line((MARGIN_L, self.y), (MARGIN_L + TEXT_W, self.y), color=(0, 0, 0), width=0.8)
        for r, row in enumerate(rows):
            fnt = BOLD_FONT if r == 0 else BODY_FONT
            x = MARGIN_L
            if r == 0:
                self.page.draw_rect(pymupdf.Rect(MARGIN_L, self.y, MARGIN_L + TEXT_W, self.y + rh),
                                    color=None, fill=(0.88, 0.91, 0.96))
            for w, cell in zip(widths, row):
                tl = pymupdf.get_text_length(cell, fontname=fnt, fontsize=9.5)
                assert tl < w - 6, f"table cell too wide: {cell!r}"
                self.page.insert_text((x + 4, self.y + 12), cell, fontname=fnt, fontsize=9.5)
                x += w
            self.y += rh
            self.page.draw_line((MARGIN_L, self.y), (MARGIN_L + TEXT_W, self.y), color=(0.6, 0.6, 0.6),
                                width=0.8 if r == 0 else 0.4)
        self.y += 12

    def figure(self, img: Image.Image, caption: str):
        w = 400
        h = w * img.height / img.width
        self.need(h + 30)
        x0 = MARGIN_L + (TEXT_W - w) / 2
        buf = io.BytesIO()
        img.save(buf, format="PNG", optimize=True)
        self.page.insert_image(pymupdf.Rect(x0, self.y, x0 + w, self.y + h), stream=buf.getvalue())
        self.page.draw_rect(pymupdf.Rect(x0, self.y, x0 + w, self.y + h), color=(0.7, 0.7, 0.7), width=0.5)
        self.y += h + 6
        tl = pymupdf.get_text_length(caption, fontname="heit", fontsize=9.5)
        self.page.insert_text((MARGIN_L + (TEXT_W - tl) / 2, self.y + 10), caption, fontname="heit",
                              fontsize=9.5, color=(0.15, 0.15, 0.15))
        self.y += 24


def build_pdf(doc_spec: dict, path: Path) -> None:
    doc = pymupdf.open()
    n = len(doc_spec["pages"])
    for i, (heading, blocks) in enumerate(doc_spec["pages"], start=1):
        page = doc.new_page(width=PAGE_W, height=PAGE_H)
        # running header and footer
        page.insert_text((MARGIN_L, 50), doc_spec["title"], fontname=BODY_FONT, fontsize=8.5, color=GREY)
        page.draw_line((MARGIN_L, 58), (PAGE_W - MARGIN_R, 58), color=GREY, width=0.5)
        page.draw_line((MARGIN_L, 805), (PAGE_W - MARGIN_R, 805), color=GREY, width=0.5)
        page.insert_text((MARGIN_L, 820), doc_spec["org"], fontname=BODY_FONT, fontsize=8.5, color=GREY)
        foot = f"Page {i} of {n}"
        tl = pymupdf.get_text_length(foot, fontname=BODY_FONT, fontsize=8.5)
        page.insert_text((PAGE_W - MARGIN_R - tl, 820), foot, fontname=BODY_FONT, fontsize=8.5, color=GREY)
        lay = Layout(page)
        if i == 1:  # title block
            for ln in wrap(doc_spec["title"], BOLD_FONT, 19, TEXT_W):
                page.insert_text((MARGIN_L, lay.y + 18), ln, fontname=BOLD_FONT, fontsize=19)
                lay.y += 25
            page.insert_text((MARGIN_L, lay.y + 12), doc_spec["org"], fontname="heit", fontsize=11, color=GREY)
            lay.y += 34
        lay.heading(heading)
        for blk in blocks:
            if blk[0] == "p":
                lay.para(blk[1])
            elif blk[0] == "table":
                lay.table(blk[1], blk[2])
            elif blk[0] == "fig":
                lay.figure(blk[1](), blk[2])
            else:
                raise ValueError(blk[0])
    fixed_date = "D:20250601120000Z"
    doc.set_metadata({
        "title": doc_spec["title"], "author": doc_spec["org"], "subject": doc_spec["subject"],
        "keywords": "mmkb sample, fictional", "creator": "mmkb samples/make_samples.py",
        "producer": "PyMuPDF", "creationDate": fixed_date, "modDate": fixed_date,
    })
    doc.save(path, garbage=4, deflate=True, no_new_id=True)
    doc.close()


# --------------------------------------------------------------------------
# Verification
# --------------------------------------------------------------------------
def norm(s: str) -> str:
    return " ".join(s.split())


def verify() -> None:
    texts: dict[tuple[str, int], str] = {}
    errors: list[str] = []
    for spec in DOCS:
        doc = pymupdf.open(OUT / spec["file"])
        if not 3 <= doc.page_count <= 6:
            errors.append(f"{spec['file']}: {doc.page_count} pages")
        if not any(p.get_images() for p in doc):
            errors.append(f"{spec['file']}: no embedded figure")
        for p in doc:
            texts[(spec["file"], p.number + 1)] = p.get_text()
        doc.close()
        for pno, (_, blocks) in enumerate(spec["pages"], start=1):
            words = sum(len(b[1].split()) for b in blocks if b[0] == "p")
            if words < MIN_WORDS_PER_PAGE:
                errors.append(f"{spec['file']} p{pno}: only {words} prose words")
    for q in QUESTIONS:
        if q["answer"] is None:
            for w in q["absent"]:
                hits = [k for k, t in texts.items() if w.lower() in t.lower()]
                if hits:
                    errors.append(f"unanswerable {q['question']!r}: {w!r} found on {hits}")
            continue
        key = (q["file"], q["page"])
        if q["answer"] not in texts.get(key, ""):
            errors.append(f"{q['answer']!r} not found verbatim on {key}")
        others = [k for k, t in texts.items() if k != key and q["answer"].lower() in norm(t).lower()]
        if others:
            errors.append(f"{q['answer']!r} also on {others}")
    total = sum(f.stat().st_size for f in OUT.iterdir())
    if total > MAX_TOTAL_BYTES:
        errors.append(f"collection is {total} bytes (> {MAX_TOTAL_BYTES})")
    for f in IMAGE_FILES.values():
        with Image.open(OUT / f) as im:
            if not (400 <= max(im.size) <= 800):
                errors.append(f"{f}: size {im.size}")
    if errors:
        print("VERIFICATION FAILED:", *errors, sep="\n  ", file=sys.stderr)
        sys.exit(1)
    print(f"verified {sum(q['answer'] is not None for q in QUESTIONS)} answers on "
          f"{len(texts)} pages; collection size {total} bytes")


# --------------------------------------------------------------------------
# Chinese collection (samples/collection-zh/): the same kinds of documents in
# Chinese. A born-digital PDF with a table, a scanned notice (an image-only PDF
# that ingest OCRs with Tesseract chi_sim) and a slide deck. Text is set in
# Droid Sans Fallback, the CJK font built into PyMuPDF, so no system font is
# needed. Questions go to questions-zh.json, apart from questions.json, whose
# readers (benchmarks, the English end-to-end test) ask the English collection.
# --------------------------------------------------------------------------
OUT_ZH = HERE / "collection-zh"
ZH_MANUAL = "kx360-compressor-maintenance-zh.pdf"
ZH_NOTICE = "scanned-power-room-notice-zh.pdf"
ZH_SLIDES = "new-staff-safety-training-zh.pptx"
CJK_FONT = pymupdf.Font("cjk")
MIN_CJK_CHARS_PER_PAGE = 300  # about a printed page of Chinese prose at this size

# "page" is 1-based: the PDF page, or the slide number. The answer occurs verbatim
# on that page (the scanned notice: in the text drawn on it) and on no other.
QUESTIONS_ZH = [
    {"question": "KX-360空压机维护规程从哪一天开始施行？",
     "answer": "2025年3月1日", "file": ZH_MANUAL, "page": 1},
    {"question": "KX-450型空压机的额定排气压力是多少？",
     "answer": "1.0 MPa", "file": ZH_MANUAL, "page": 2},
    {"question": "KX-360空压机每运行多少小时更换一次油过滤器？",
     "answer": "2,000小时", "file": ZH_MANUAL, "page": 3},
    {"question": "What is the part number of the oil filter for the KX-360 air compressor?",
     "answer": "OF-2208", "file": ZH_MANUAL, "page": 3},
    {"question": "配电室门禁密码多久更换一次？",
     "answer": "30天", "file": ZH_NOTICE, "page": 1},
    {"question": "配电室值班电话是多少？",
     "answer": "8806-2417", "file": ZH_NOTICE, "page": 1},
    {"question": "新员工安全培训考试的合格分数是多少？",
     "answer": "85分", "file": ZH_SLIDES, "page": 2},
    {"question": "安全帽的使用期限是多久？",
     "answer": "30个月", "file": ZH_SLIDES, "page": 3},
    {"question": "KX-360空压机出口到欧洲的关税税率是多少？",
     "answer": None, "file": None, "page": None, "absent": ["关税", "出口", "欧洲"]},
]

ZH_MANUAL_SPEC = {
    "title": "华远KX系列螺杆式空气压缩机设备维护规程",
    "org": "华远精密机械有限公司 设备管理部",
    "subject": "KX系列空压机的日常检查、定期保养与故障处理",
    "pages": [
        ("一、总则", [
            ("p", "本规程适用于华远精密机械有限公司各生产车间使用的KX系列螺杆式空气压缩机，包括KX-360、KX-450和"
                  "KX-550三个型号。规程编号为HY-WB-2025-017，由设备管理部负责解释，自2025年3月1日起施行，原规程"
                  "HY-WB-2019-004同时废止。各车间应将本规程张贴在空压机房内，并组织操作人员学习。"),
            ("p", "空压机是全厂压缩空气的唯一来源，一旦停机，喷涂线、装配线和包装线都会受到影响。因此，设备的维护"
                  "必须坚持预防为主、定期保养与状态检查相结合的原则。操作人员负责日常检查和记录，维修班组负责定期"
                  "保养和故障处理，设备管理部负责监督检查和备件计划。"),
            ("p", "操作人员必须经过专门培训并取得上岗证后方可独立操作空压机。交接班时，交班人员应向接班人员说明设备"
                  "运行情况、异常现象和处理结果，并在运行记录本上签字。任何人不得擅自调整安全阀、压力开关和温度"
                  "保护装置的设定值。"),
            ("p", "空压机房应保持清洁、通风良好，室内温度不得高于四十摄氏度。机房内禁止存放易燃易爆物品，消防器材应"
                  "放在明显且便于取用的位置。发现漏油、漏气或异常噪声时，操作人员应立即报告班长，必要时按紧急停机"
                  "程序停机，并挂上“禁止合闸”的警示牌。"),
        ]),
        ("二、主要技术参数", [
            ("p", "KX系列空压机采用两级压缩螺杆主机和变频驱动，排气量可随用气量自动调节。下表列出了三个型号的主要"
                  "技术参数。铭牌上的数值以出厂检验报告为准，改造或更换主机后，设备管理部应重新核定参数并更新设备"
                  "台账。"),
            ("table", [95, 95, 95, 95, 95], [
                ["型号", "额定功率", "排气压力", "排气量", "整机重量"],
                ["KX-360", "37 kW", "0.8 MPa", "6.2 m³/min", "1,250 kg"],
                ["KX-450", "45 kW", "1.0 MPa", "7.5 m³/min", "1,480 kg"],
                ["KX-550", "55 kW", "1.3 MPa", "9.1 m³/min", "1,720 kg"],
            ]),
            ("p", "空压机的排气温度正常范围为七十五至九十五摄氏度。排气温度超过一百零五摄氏度时，控制器会发出高温报警"
                  "并自动卸载；超过一百一十摄氏度时自动停机。冷却风扇和油冷却器的清洁状况对排气温度影响最大，夏季"
                  "应适当缩短清洁周期。"),
            ("p", "空压机启动前应检查油位，油位应在油位计的上下刻线之间。新设备或更换润滑油后首次启动时，应先点动"
                  "确认转向正确，再空载运行五分钟，确认无异常后加载。停机时应先卸载运行约一分钟，待压力下降后再按"
                  "停止按钮，以免螺杆主机在满载状态下突然停转。"),
            ("p", "储气罐和管路属于压力容器和压力管道，应按国家规定定期检验。储气罐底部的排污阀每班至少手动排放一次，"
                  "排出的油水混合物应倒入专用收集桶，不得直接排入下水道。"),
        ]),
        ("三、定期保养", [
            ("p", "定期保养按累计运行小时数安排，控制器会在到期前提醒。KX-360空压机每运行2,000小时更换一次油过滤器，"
                  "原厂备件编号为OF-2208；更换时应同时检查油气分离器的压差，压差超过零点一兆帕时应一并更换分离器"
                  "滤芯。空气过滤器每运行一千小时清洁一次，粉尘较多的车间应缩短清洁周期。"),
            ("p", "润滑油每运行4,000小时或每十二个月更换一次，以先到者为准，应使用原厂指定的螺杆空压机专用合成油，"
                  "不同牌号的润滑油不得混用。更换润滑油时，应在停机并泄压后趁热排放旧油，以便杂质随旧油一同排出。"
                  "更换下来的废油和滤芯属于危险废物，应交由有资质的单位处理。"),
            ("p", "每次保养后，维修人员应在设备保养记录表上填写保养日期、运行小时数、更换的备件和检查结果，并由班长"
                  "签字确认。设备管理部每季度抽查一次保养记录，发现漏保、错保的，按公司设备管理考核办法处理。"),
            ("p", "主电机轴承每运行8,000小时加注一次润滑脂，每次加注量约为二十克，加注过多会导致轴承温度升高。联轴器"
                  "弹性体应每年检查一次，发现老化或裂纹应及时更换。控制柜内的灰尘应每半年用干燥的压缩空气吹扫一次，"
                  "吹扫前必须断开电源并确认无电。"),
        ]),
    ],
}

ZH_NOTICE_TEXT = [
    ("title", "关于加强配电室安全管理的通知"),
    ("center", "华远精密机械有限公司安全环保部"),
    ("center", "安字〔2025〕12号"),
    ("p", "各车间、各部门："),
    ("p", "近期，公司在安全检查中发现部分配电室存在门禁管理不严、无关人员随意进出、值班记录不全等问题。为防止"
          "触电和电气火灾事故，现就加强配电室安全管理通知如下。"),
    ("p", "一、配电室实行门禁管理，门禁密码每30天更换一次，由动力车间负责通知持证电工，严禁将密码告知无关人员。"),
    ("p", "二、进入配电室检修必须两人以上同行，一人操作、一人监护，并穿戴绝缘鞋和绝缘手套。"),
    ("p", "三、配电室实行二十四小时值班，值班电话8806-2417。发现设备异常或火情，应立即拨打值班电话并按应急预案处置。"),
    ("p", "四、配电室内禁止堆放杂物，消防器材每月检查一次，检查结果记入消防检查记录。"),
    ("p", "本通知自发布之日起执行。"),
    ("right", "二〇二五年六月十八日"),
]

ZH_SLIDES_SPEC = [
    ("新员工安全培训", ["华远精密机械有限公司 安全环保部", "2025年度 第二期"]),
    ("培训安排与考核", ["培训时长：共16学时，其中理论12学时、实操4学时",
                        "培训内容：安全生产法规、岗位风险、应急处置、劳动防护用品的使用",
                        "考核方式：闭卷笔试，满分100分，85分及以上为合格",
                        "考核不合格者须在一个月内补考，补考仍不合格的不得上岗"]),
    ("劳动防护用品", ["安全帽：进入生产区域必须佩戴，使用期限为30个月，受过冲击的立即报废",
                      "防护眼镜：打磨、切割和喷涂作业时必须佩戴",
                      "耳塞：在噪声超过八十五分贝的区域作业时必须佩戴",
                      "劳动防护用品由所在部门按季度申领，不得转借他人"]),
]


def cjk_font(size: int) -> ImageFont.FreeTypeFont:
    key = ("cjk", size)
    if key not in _FONT_CACHE:
        _FONT_CACHE[key] = ImageFont.truetype(io.BytesIO(CJK_FONT.buffer), size)
    return _FONT_CACHE[key]


# Where a Chinese line may not break: inside a run of Latin letters, digits and their
# punctuation (a code "KX-360", a number "2,000"), before closing punctuation, and inside a
# gold answer, so every answer stays on one line of extracted text.
_ZH_UNBREAKABLE = [q["answer"] for q in QUESTIONS_ZH if q["answer"]]


def _zh_atoms(text: str) -> list[str]:
    import re

    protected = "|".join(re.escape(a) for a in sorted(_ZH_UNBREAKABLE, key=len, reverse=True))
    pattern = re.compile(rf"(?:{protected}|[A-Za-z0-9][A-Za-z0-9.,/³%-]*|.)[，。、；：？！”）」]*")
    return pattern.findall(text)


def wrap_zh(text: str, size: float, width: float) -> list[str]:
    lines, cur = [], ""
    for atom in _zh_atoms(text):
        if cur and CJK_FONT.text_length(cur + atom, fontsize=size) > width:
            lines.append(cur)
            cur = atom.lstrip()
        else:
            cur += atom
    if cur:
        lines.append(cur)
    return lines


class LayoutZh(Layout):
    """Layout with the embedded CJK font and character-based line breaking."""

    def heading(self, text):
        self.need(30)
        self.page.insert_text((MARGIN_L, self.y + 14), text, fontname="cjk", fontsize=15, color=(0.05, 0.2, 0.45))
        self.y += 32

    def para(self, text):
        lines = wrap_zh(text, BODY_SIZE, TEXT_W)
        self.need(len(lines) * LEADING)
        for ln in lines:
            self.page.insert_text((MARGIN_L, self.y + BODY_SIZE), ln, fontname="cjk", fontsize=BODY_SIZE)
            self.y += LEADING
        self.y += 7

    def table(self, widths, rows):
        assert abs(sum(widths) - TEXT_W) < 1, (sum(widths), TEXT_W)
        rh = 19
        self.need(rh * len(rows) + 10)
        self.page.draw_line((MARGIN_L, self.y), (MARGIN_L + TEXT_W, self.y), color=(0, 0, 0), width=0.8)
        for r, row in enumerate(rows):
            if r == 0:
                self.page.draw_rect(pymupdf.Rect(MARGIN_L, self.y, MARGIN_L + TEXT_W, self.y + rh),
                                    color=None, fill=(0.88, 0.91, 0.96))
            x = MARGIN_L
            for w, cell in zip(widths, row):
                assert CJK_FONT.text_length(cell, fontsize=10) < w - 6, f"table cell too wide: {cell!r}"
                self.page.insert_text((x + 4, self.y + 13.5), cell, fontname="cjk", fontsize=10)
                x += w
            self.y += rh
            self.page.draw_line((MARGIN_L, self.y), (MARGIN_L + TEXT_W, self.y), color=(0.6, 0.6, 0.6),
                                width=0.8 if r == 0 else 0.4)
        self.y += 12


def _save_pdf(doc, path: Path, title: str, author: str, subject: str) -> None:
    fixed_date = "D:20250601120000Z"
    doc.set_metadata({"title": title, "author": author, "subject": subject, "keywords": "mmkb sample, fictional",
                      "creator": "mmkb samples/make_samples.py", "producer": "PyMuPDF",
                      "creationDate": fixed_date, "modDate": fixed_date})
    doc.save(path, garbage=4, deflate=True, no_new_id=True)
    doc.close()


def build_pdf_zh(spec: dict, path: Path) -> None:
    doc = pymupdf.open()
    n = len(spec["pages"])
    for i, (heading, blocks) in enumerate(spec["pages"], start=1):
        page = doc.new_page(width=PAGE_W, height=PAGE_H)
        page.insert_font(fontname="cjk", fontbuffer=CJK_FONT.buffer)
        page.insert_text((MARGIN_L, 50), spec["title"], fontname="cjk", fontsize=8.5, color=GREY)
        page.draw_line((MARGIN_L, 58), (PAGE_W - MARGIN_R, 58), color=GREY, width=0.5)
        page.draw_line((MARGIN_L, 805), (PAGE_W - MARGIN_R, 805), color=GREY, width=0.5)
        page.insert_text((MARGIN_L, 820), spec["org"], fontname="cjk", fontsize=8.5, color=GREY)
        foot = f"第 {i} 页 共 {n} 页"
        tl = CJK_FONT.text_length(foot, fontsize=8.5)
        page.insert_text((PAGE_W - MARGIN_R - tl, 820), foot, fontname="cjk", fontsize=8.5, color=GREY)
        lay = LayoutZh(page)
        if i == 1:
            page.insert_text((MARGIN_L, lay.y + 18), spec["title"], fontname="cjk", fontsize=19)
            lay.y += 25
            page.insert_text((MARGIN_L, lay.y + 12), spec["org"], fontname="cjk", fontsize=11, color=GREY)
            lay.y += 34
        lay.heading(heading)
        for blk in blocks:
            if blk[0] == "p":
                lay.para(blk[1])
            elif blk[0] == "table":
                lay.table(blk[1], blk[2])
            else:
                raise ValueError(blk[0])
    doc.subset_fonts()  # the full font is 3.5 MB; the glyphs used are a few dozen KB
    _save_pdf(doc, path, spec["title"], spec["org"], spec["subject"])


def img_scanned_notice() -> Image.Image:
    """An A4 notice as a 150 dpi office scan: grey paper, a slight skew, speckle, soft focus."""
    rng = random.Random(17)
    w, h = 1240, 1754
    page = Image.new("L", (w, h), 255)
    d = ImageDraw.Draw(page)
    x0, x1, y = 150, w - 150, 190
    for kind, text in ZH_NOTICE_TEXT:
        if kind == "title":
            d.text((w // 2, y), text, font=cjk_font(48), fill=0, anchor="mt")
            y += 110
        elif kind == "center":
            d.text((w // 2, y), text, font=cjk_font(30), fill=0, anchor="mt")
            y += 56
        elif kind == "right":
            y += 30
            d.text((x1, y), text, font=cjk_font(30), fill=0, anchor="rt")
            y += 56
        else:
            fnt = cjk_font(30)
            line = ""
            for atom in _zh_atoms(text):
                if line and d.textlength(line + atom, font=fnt) > x1 - x0:
                    d.text((x0, y), line, font=fnt, fill=0)
                    y += 50
                    line = atom
                else:
                    line += atom
            d.text((x0, y), line, font=fnt, fill=0)
            y += 66
    # A red seal over the date, as on a real notice (drawn in grey: the scan is greyscale).
    d.ellipse([x1 - 260, y - 220, x1 - 40, y], outline=120, width=6)
    page = page.rotate(0.6, resample=Image.BICUBIC, fillcolor=255)
    page = page.filter(ImageFilter.GaussianBlur(0.7))
    px = page.load()
    for _ in range(9000):  # speckle: dust on the scanner glass
        px[rng.randrange(w), rng.randrange(h)] = rng.choice((60, 110, 170))
    # Grey, grainy paper; seeded numpy noise, since Pillow's effect_noise is not seedable.
    paper = 235 + np.random.default_rng(17).normal(0, 2.5, (h, w))
    return Image.fromarray(np.minimum(np.asarray(page), paper).clip(0, 255).astype(np.uint8))


def build_scanned_pdf(path: Path) -> None:
    buf = io.BytesIO()
    img_scanned_notice().save(buf, format="JPEG", quality=70, optimize=True)
    doc = pymupdf.open()
    page = doc.new_page(width=PAGE_W, height=PAGE_H)
    page.insert_image(page.rect, stream=buf.getvalue())
    _save_pdf(doc, path, "scan", "", "")


def build_pptx_zh(path: Path) -> None:
    import datetime
    import zipfile

    from pptx import Presentation
    from pptx.util import Pt

    prs = Presentation()
    prs.core_properties.author = "华远精密机械有限公司 安全环保部"
    prs.core_properties.title = ZH_SLIDES_SPEC[0][0]
    fixed = datetime.datetime(2025, 6, 1, 12, 0, 0)
    prs.core_properties.created = prs.core_properties.modified = fixed
    prs.core_properties.last_modified_by = "mmkb samples/make_samples.py"
    for number, (title, lines) in enumerate(ZH_SLIDES_SPEC):
        slide = prs.slides.add_slide(prs.slide_layouts[0 if number == 0 else 1])
        slide.shapes.title.text = title
        body = slide.placeholders[1].text_frame
        body.text = lines[0]
        for line in lines[1:]:
            body.add_paragraph().text = line
        for paragraph in body.paragraphs:
            for run in paragraph.runs:
                run.font.size = Pt(20)
    buf = io.BytesIO()
    prs.save(buf)
    # python-pptx stamps each zip member with the current time; fixed stamps keep the file
    # byte-for-byte the same on every run.
    with zipfile.ZipFile(buf) as src, zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            member = zipfile.ZipInfo(info.filename, date_time=(2025, 6, 1, 12, 0, 0))
            member.compress_type = zipfile.ZIP_DEFLATED
            dst.writestr(member, src.read(info.filename))


def _ocr_text(path: Path) -> str | None:
    """The scanned notice as ingest reads it (Tesseract chi_sim), or None without Tesseract."""
    sys.path.insert(0, str(HERE.parent))
    try:
        from ingest.ocr import OcrUnavailable, TesseractOcr
        try:
            ocr = TesseractOcr()
        except OcrUnavailable:
            return None
    except ImportError:
        return None
    doc = pymupdf.open(path)
    zoom = 200 / 72  # ingest renders scanned pages at 200 dpi (ingest/loaders.py _OCR_DPI)
    text = ocr.read(doc[0].get_pixmap(matrix=pymupdf.Matrix(zoom, zoom), colorspace=pymupdf.csGRAY).tobytes("png"))
    doc.close()
    return text


def verify_zh() -> None:
    from pptx import Presentation

    texts: dict[tuple[str, int], str] = {}
    errors: list[str] = []
    doc = pymupdf.open(OUT_ZH / ZH_MANUAL)
    for p in doc:
        texts[(ZH_MANUAL, p.number + 1)] = p.get_text()
        chars = sum(1 for c in p.get_text() if "\u4e00" <= c <= "\u9fff")
        if chars < MIN_CJK_CHARS_PER_PAGE:
            errors.append(f"{ZH_MANUAL} p{p.number + 1}: only {chars} Chinese characters")
    doc.close()
    doc = pymupdf.open(OUT_ZH / ZH_NOTICE)
    if doc[0].get_text().strip() or not doc[0].get_images():
        errors.append(f"{ZH_NOTICE}: not an image-only page")
    doc.close()
    drawn = "\n".join(text for _, text in ZH_NOTICE_TEXT)
    texts[(ZH_NOTICE, 1)] = drawn
    ocr = _ocr_text(OUT_ZH / ZH_NOTICE)
    for number, slide in enumerate(Presentation(str(OUT_ZH / ZH_SLIDES)).slides, start=1):
        texts[(ZH_SLIDES, number)] = "\n".join(s.text_frame.text for s in slide.shapes if s.has_text_frame)
    for q in QUESTIONS_ZH:
        if q["answer"] is None:
            for word in q["absent"]:
                hits = [k for k, t in texts.items() if word in t]
                if hits:
                    errors.append(f"unanswerable {q['question']!r}: {word!r} found on {hits}")
            continue
        key = (q["file"], q["page"])
        if q["answer"] not in texts.get(key, ""):
            errors.append(f"{q['answer']!r} not found verbatim on {key}")
        others = [k for k, t in texts.items() if k != key and q["answer"] in t]
        if others:
            errors.append(f"{q['answer']!r} also on {others}")
        if q["file"] == ZH_NOTICE and ocr is not None and q["answer"] not in ocr.replace(" ", ""):
            errors.append(f"{q['answer']!r} not in the OCR text of {ZH_NOTICE}: {ocr!r}")
    total = sum(f.stat().st_size for f in OUT_ZH.iterdir())
    if total > MAX_TOTAL_BYTES // 2:
        errors.append(f"collection-zh is {total} bytes (> {MAX_TOTAL_BYTES // 2})")
    if errors:
        print("VERIFICATION FAILED (zh):", *errors, sep="\n  ", file=sys.stderr)
        sys.exit(1)
    print(f"verified {sum(q['answer'] is not None for q in QUESTIONS_ZH)} Chinese-collection answers"
          f"{'' if ocr is not None else ' (OCR not checked: no Tesseract)'}; collection-zh size {total} bytes")


def main_zh() -> None:
    OUT_ZH.mkdir(parents=True, exist_ok=True)
    expected = {ZH_MANUAL, ZH_NOTICE, ZH_SLIDES}
    for f in OUT_ZH.iterdir():
        if f.name not in expected:
            f.unlink()
    build_pdf_zh(ZH_MANUAL_SPEC, OUT_ZH / ZH_MANUAL)
    build_scanned_pdf(OUT_ZH / ZH_NOTICE)
    build_pptx_zh(OUT_ZH / ZH_SLIDES)
    qs = [{k: q[k] for k in ("question", "answer", "file", "page")} for q in QUESTIONS_ZH]
    (HERE / "questions-zh.json").write_text(json.dumps(qs, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    verify_zh()
    for f in sorted(OUT_ZH.iterdir()):
        print(f"  {f.name:40s} {f.stat().st_size:>8d} bytes")


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    expected = {d["file"] for d in DOCS} | set(IMAGE_FILES.values())
    for f in OUT.iterdir():  # remove stale outputs so the folder matches this script
        if f.name not in expected:
            f.unlink()
    for spec in DOCS:
        build_pdf(spec, OUT / spec["file"])
    img_wiring_diagram().save(OUT / IMAGE_FILES["wiring"], optimize=True)
    img_bar_chart().save(OUT / IMAGE_FILES["chart"], optimize=True)
    img_danger_sign().save(OUT / IMAGE_FILES["sign"], quality=85, optimize=True)
    qs = [{k: q[k] for k in ("question", "answer", "file", "page")} for q in QUESTIONS]
    (HERE / "questions.json").write_text(json.dumps(qs, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    (HERE / "image_queries.json").write_text(json.dumps(IMAGE_QUERIES, indent=2) + "\n", encoding="utf-8")
    verify()
    for f in sorted(OUT.iterdir()):
        print(f"  {f.name:40s} {f.stat().st_size:>8d} bytes")
    main_zh()


if __name__ == "__main__":
    main()
