#!/usr/bin/env python3
"""Generate ``fire_zones.csv``: SYNTHETIC forest and grassland fire zones for Tianshan.

The zones are stand-ins laid over real Xinjiang forest and grassland areas (western Tianshan /
Ili valley, eastern Tianshan, Altai), not official forest or grassland boundaries. Each zone is a
hexagon or an irregular octagon of 0.1-0.25 degree radius around a hand-picked centre.

Columns: ``zone_id,name,fuel,county_code,polygon`` where ``fuel`` is ``forest`` or
``grassland`` and ``polygon`` is one closed ring ``lon lat;lon lat;...`` (6 decimals, first
point repeated last).

``county_code`` is the county containing the centre, by ray casting over the county polygons of
``--boundaries`` when that file exists (read at generation time only, never copied here: its
terms forbid republishing), otherwise the county whose centroid in ``admin_units.csv`` is
nearest. With the boundaries the script stops unless every zone lies in the county its id
names; with centroids alone it only warns (several centres are nearer a neighbour's centroid,
so that output differs from the committed file), except that ``FZ-GONGLIU-01`` must always
be in 巩留县 (654024): the scenario's lightning burst is designed onto it.

Deterministic: one ``random.Random(2025)`` shapes the polygons, so reruns give identical files.
Python 3 standard library only.

Usage::

    python3 fire_zones.py [--boundaries PATH]
    # default ../../../shared/data/xinjiang-boundaries/xinjiang-counties.geojson
"""

import argparse
import csv
import json
import math
import random
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
DEFAULT_BOUNDARIES = (
    HERE / ".." / ".." / ".." / "shared" / "data" / "xinjiang-boundaries"
    / "xinjiang-counties.geojson"
)
SEED = 2025

# (zone_id, name, fuel, expected county code, centre lon, centre lat, radius in degrees, corners)
#
# FZ-GONGLIU-01 sits about 0.3 degrees south of the built-in storm's track (core/src/scenario.rs,
# `Track::choose`: from about 82.54 E 43.42 N to 83.30 E 43.73 N through the B0001-B0010 basin
# cluster), so it is dry ground under the thunderstorm's edge when the scenario's lightning burst
# reaches it.
ZONES = [
    # Western Tianshan, Ili valley: spruce (Picea schrenkiana) forest belts.
    ("FZ-GONGLIU-01", "巩留库尔德宁云杉林区", "forest", "654024", 82.85, 43.23, 0.10, 8),
    ("FZ-NILKA-01", "尼勒克喀什河林区", "forest", "654028", 83.75, 43.62, 0.15, 6),
    ("FZ-TEKES-01", "特克斯琼库什台林区", "forest", "654027", 82.45, 42.98, 0.15, 8),
    ("FZ-ZHAOSU-01", "昭苏夏塔林区", "forest", "654026", 80.80, 42.70, 0.18, 6),
    ("FZ-XINYUAN-01", "新源巩乃斯林区", "forest", "654025", 84.35, 43.42, 0.15, 8),
    # Eastern Tianshan.
    ("FZ-FUKANG-01", "阜康天池林区", "forest", "652302", 88.13, 43.86, 0.12, 6),
    ("FZ-URUMQI-01", "乌鲁木齐南山林区", "forest", "650121", 87.28, 43.42, 0.15, 8),
    # Altai: larch (Larix sibirica) forest.
    ("FZ-BURQIN-01", "布尔津喀纳斯林区", "forest", "654321", 87.05, 48.72, 0.22, 8),
    ("FZ-ALTAY-01", "阿勒泰市北部山区林区", "forest", "654301", 88.30, 48.10, 0.18, 6),
    ("FZ-HABAHE-01", "哈巴河白哈巴林区", "forest", "654324", 86.65, 48.62, 0.15, 8),
    ("FZ-FUYUN-01", "富蕴可可托海林区", "forest", "654322", 89.78, 47.25, 0.18, 6),
    ("FZ-QINGHE-01", "青河北部山区林区", "forest", "654325", 90.60, 46.85, 0.18, 8),
    # Mountain grasslands.
    ("FZ-BAYANBULAK-01", "和静巴音布鲁克草原", "grassland", "652827", 84.20, 42.95, 0.25, 8),
    ("FZ-NALATI-01", "新源那拉提草原", "grassland", "654025", 84.00, 43.30, 0.12, 6),
    ("FZ-TANGBULA-01", "尼勒克唐布拉草原", "grassland", "654028", 84.20, 43.75, 0.15, 8),
    ("FZ-ZHAOSU-02", "昭苏高原草原", "grassland", "654026", 81.15, 43.05, 0.20, 6),
]


def ring_contains(ring, lon, lat):
    """Even-odd ray casting of one ring of [lon, lat] points."""
    inside = False
    n = len(ring)
    for i in range(n):
        x1, y1 = ring[i][0], ring[i][1]
        x2, y2 = ring[(i + 1) % n][0], ring[(i + 1) % n][1]
        if (y1 > lat) != (y2 > lat):
            x = x1 + (lat - y1) * (x2 - x1) / (y2 - y1)
            if lon < x:
                inside = not inside
    return inside


def polygons_of(geometry):
    if geometry["type"] == "Polygon":
        return [geometry["coordinates"]]
    if geometry["type"] == "MultiPolygon":
        return geometry["coordinates"]
    return []


def county_by_ray_casting(features, lon, lat):
    """Returns the code of the county polygon holding the point (holes excluded), or None."""
    for feature in features:
        for polygon in polygons_of(feature["geometry"]):
            inside = sum(ring_contains(ring, lon, lat) for ring in polygon) % 2 == 1
            if inside:
                return feature["properties"]["code"]
    return None


def county_by_nearest_centroid(counties, lon, lat):
    def squared(item):
        _, (clon, clat) = item
        dx = (clon - lon) * math.cos(math.radians(lat))
        return dx * dx + (clat - lat) ** 2

    return min(sorted(counties.items()), key=squared)[0]


def ring_around(rng, lon, lat, radius, corners):
    """A closed ring of `corners` points, angles and radii jittered, counter-clockwise."""
    step = 2.0 * math.pi / corners
    start = rng.uniform(0.0, step)
    points = []
    for k in range(corners):
        angle = start + k * step + rng.uniform(-0.2, 0.2) * step
        r = radius * rng.uniform(0.8, 1.15)
        points.append((lon + r * math.cos(angle), lat + r * math.sin(angle)))
    points.append(points[0])
    return points


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--boundaries", type=Path, default=DEFAULT_BOUNDARIES)
    args = parser.parse_args()

    counties = {}
    with open(HERE / "admin_units.csv", encoding="utf-8", newline="") as f:
        for row in csv.DictReader(f):
            if row["level"] == "county" and row["lon"] and row["lat"]:
                counties[row["code"]] = (float(row["lon"]), float(row["lat"]))

    features = None
    if args.boundaries.exists():
        with open(args.boundaries, encoding="utf-8") as f:
            features = json.load(f)["features"]
        method = f"ray casting over {args.boundaries.name}"
    else:
        method = "nearest county centroid (boundaries not found)"

    rng = random.Random(SEED)
    rows = []
    mismatches = []
    for zone_id, name, fuel, expected, lon, lat, radius, corners in ZONES:
        code = None
        if features is not None:
            code = county_by_ray_casting(features, lon, lat)
        if code is None:
            code = county_by_nearest_centroid(counties, lon, lat)
        if code != expected:
            mismatches.append(f"{zone_id}: centre in {code}, expected {expected}")
        ring = ring_around(rng, lon, lat, radius, corners)
        polygon = ";".join(f"{x:.6f} {y:.6f}" for x, y in ring)
        rows.append([zone_id, name, fuel, code, polygon])
    if mismatches and (features is not None or any("FZ-GONGLIU-01" in m for m in mismatches)):
        sys.exit("county mismatch:\n  " + "\n  ".join(mismatches))
    for mismatch in mismatches:
        print(f"warning: {mismatch}", file=sys.stderr)

    with open(HERE / "fire_zones.csv", "w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(["zone_id", "name", "fuel", "county_code", "polygon"])
        writer.writerows(rows)
    print(f"fire_zones.csv: {len(rows)} zones, counties by {method}")


if __name__ == "__main__":
    main()
