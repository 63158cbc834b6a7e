#!/usr/bin/env python3
"""Draws the Online Inbox's PNG icons (functions/api/static/icons/icon-{192,512}.png), the same
picture as icon.svg: a white envelope on the inbox's blue, full-bleed so that the icon also works
masked (Android's round and squircle shapes keep the middle 80%). Standard library only; run once
when the picture changes and commit the files:  python3 infra/local/make-icons.py"""
import os
import struct
import zlib

BLUE = (0x0B, 0x3D, 0x91)
WHITE = (0xFF, 0xFF, 0xFF)
HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "..", "functions", "api", "static", "icons")


def inside_envelope(x, y):
    """(x, y) in [0, 1]: on the envelope's outline or its flap, 0.05 thick (as icon.svg)."""
    left, right, top, bottom, w = 0.25, 0.75, 0.32, 0.68, 0.05
    if not (left <= x <= right and top <= y <= bottom):
        return False
    if x < left + w or x > right - w or y < top + w or y > bottom - w:
        return True
    # The flap: two lines from the top corners to the middle (0.5, 0.52).
    for (x0, y0) in ((left, top), (right, top)):
        x1, y1 = 0.5, 0.52
        dx, dy = x1 - x0, y1 - y0
        t = max(0.0, min(1.0, ((x - x0) * dx + (y - y0) * dy) / (dx * dx + dy * dy)))
        px, py = x0 + t * dx, y0 + t * dy
        if ((x - px) ** 2 + (y - py) ** 2) ** 0.5 < w / 2:
            return True
    return False


def png(size):
    rows = bytearray()
    for j in range(size):
        rows.append(0)  # filter: none
        for i in range(size):
            rows.extend(WHITE if inside_envelope((i + 0.5) / size, (j + 0.5) / size) else BLUE)

    def chunk(kind, data):
        c = struct.pack(">I", len(data)) + kind + data
        return c + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", size, size, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr)
            + chunk(b"IDAT", zlib.compress(bytes(rows), 9)) + chunk(b"IEND", b""))


for n in (192, 512):
    with open(os.path.join(OUT, f"icon-{n}.png"), "wb") as f:
        f.write(png(n))
