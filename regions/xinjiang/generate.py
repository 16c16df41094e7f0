#!/usr/bin/env python3
"""Generate the Xinjiang region folder for Tianshan.

Reads the real administrative divisions (GB/T 2260 codes, NBS township codes) and writes,
next to this script:

- ``admin_units.csv``            verbatim copy of the admin divisions file (real data)
- ``stations.csv``               SYNTHETIC station network (rain, water-level, weather)
- ``basins.csv``                 SYNTHETIC small flash-flood basins
- ``basin_gauges.csv``           rain gauges per basin with inverse-distance-squared weights
                                 (a stand-in for Thiessen polygon weights)
- ``basin_thresholds.csv``       SYNTHETIC critical rainfall per basin, duration and soil state
- ``water_level_thresholds.csv`` SYNTHETIC stage thresholds of the water-level stations

Nothing but the admin divisions is real: stations, basins and thresholds are invented over the
county centroids so that the demo has a plausible network. Boundary GeoJSON is never read or
copied (its terms forbid republishing).

Deterministic: one ``random.Random(2025)`` drives everything, so rerunning gives identical
files. Python 3 standard library only.

Usage::

    python3 generate.py [--admin PATH]   # default ../../../shared/data/xinjiang-admin-divisions.csv
"""

import argparse
import csv
import math
import random
import shutil
from pathlib import Path

HERE = Path(__file__).resolve().parent
DEFAULT_ADMIN = HERE / ".." / ".." / ".." / "shared" / "data" / "xinjiang-admin-divisions.csv"

RAIN_GAUGES = 2600
WATER_LEVEL_STATIONS = 90
WEATHER_STATIONS = 500
BASINS = 326

# The Ili cluster: basins B0001..B0010 within CLUSTER_RADIUS_KM of a point where 巩留县,
# 新源县 and 尼勒克县 meet (Kunes / Tekes valleys), so one storm can cross several of them.
CLUSTER_CENTRE = (82.95, 43.50)
CLUSTER_BASINS = 10
CLUSTER_RADIUS_KM = 18.0
CLUSTER_MIN_SPACING_KM = 6.0
CLUSTER_GAUGES_PER_BASIN = 4
CLUSTER_GAUGE_RADIUS_KM = 8.0
CLUSTER_COUNTIES = ("654024", "654025", "654028")

COUNTY_JITTER_DEG = 0.25
GAUGE_SEARCH_KM = 30.0
# Tianshan / Altai / Pamir-flank prefectures get twice the density of the desert ones;
# Ili (the wettest part of Xinjiang) three times.
PREFECTURE_WEIGHT = {
    "654000": 3,
    "650100": 2, "650400": 2, "650500": 2, "652300": 2, "652700": 2, "652800": 2,
    "652900": 2, "653000": 2, "654200": 2, "654300": 2,
}

# Li Qing et al. 2017 shape (hazards.md §2.2, TV2.1), scaled for arid Xinjiang.
DURATION_FACTOR = {1: 1.0, 3: 1.7, 6: 2.5}
SOIL_FACTOR = {"dry": 1.15, "normal": 1.0, "wet": 0.85}
PREPARE_RATIO = 0.7


def km_between(a, b):
    """Equirectangular distance in km between two (lon, lat) points; fine at basin scale."""
    mean_lat = math.radians((a[1] + b[1]) / 2.0)
    dx = (a[0] - b[0]) * 111.32 * math.cos(mean_lat)
    dy = (a[1] - b[1]) * 110.57
    return math.hypot(dx, dy)


def offset_km(point, rng, max_km):
    """A point uniformly inside a disc of max_km around point."""
    r = max_km * math.sqrt(rng.random())
    theta = rng.uniform(0.0, 2.0 * math.pi)
    dlat = r * math.sin(theta) / 110.57
    dlon = r * math.cos(theta) / (111.32 * math.cos(math.radians(point[1])))
    return (point[0] + dlon, point[1] + dlat)


def jitter_deg(point, rng, max_deg):
    return (point[0] + rng.uniform(-max_deg, max_deg), point[1] + rng.uniform(-max_deg, max_deg))


def round_half(x):
    """Rounds to the nearest 0.5 (halves up, not banker's rounding)."""
    return math.floor(x * 2.0 + 0.5) / 2.0


def allocate(total, weights):
    """Largest-remainder allocation of total over {key: weight}, deterministic on ties."""
    weight_sum = sum(weights.values())
    exact = {k: total * w / weight_sum for k, w in weights.items()}
    counts = {k: math.floor(v) for k, v in exact.items()}
    left = total - sum(counts.values())
    for k in sorted(exact, key=lambda k: (counts[k] - exact[k], k))[:left]:
        counts[k] += 1
    return counts


def write_csv(path, header, rows):
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(header)
        w.writerows(rows)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--admin", type=Path, default=DEFAULT_ADMIN,
                        help="xinjiang-admin-divisions.csv (code,name,level,parent_code,lon,lat)")
    args = parser.parse_args()
    rng = random.Random(2025)

    with open(args.admin, newline="", encoding="utf-8") as f:
        admin = list(csv.DictReader(f))
    shutil.copyfile(args.admin, HERE / "admin_units.csv")

    counties = {
        r["code"]: {"name": r["name"], "parent": r["parent_code"],
                    "centre": (float(r["lon"]), float(r["lat"]))}
        for r in admin
        if r["level"] == "county" and r["lon"] and r["lat"] and r["code"] != "659000"
    }
    townships = {}
    for r in admin:
        if r["level"] == "township":
            townships.setdefault(r["parent_code"], []).append(r["code"])

    def nearest_county(point, among):
        return min(among, key=lambda c: (km_between(point, counties[c]["centre"]), c))

    # --- the Ili cluster basins and their dense gauges -------------------------------------
    cluster = []
    while len(cluster) < CLUSTER_BASINS:
        p = offset_km(CLUSTER_CENTRE, rng, CLUSTER_RADIUS_KM)
        if all(km_between(p, q) >= CLUSTER_MIN_SPACING_KM for q in cluster):
            cluster.append(p)
    rain = []  # (lon, lat, county)
    for p in cluster:
        for _ in range(CLUSTER_GAUGES_PER_BASIN):
            g = offset_km(p, rng, CLUSTER_GAUGE_RADIUS_KM)
            rain.append((g[0], g[1], nearest_county(g, CLUSTER_COUNTIES)))

    # --- the rest of the rain gauges, per county ------------------------------------------
    weights = {c: PREFECTURE_WEIGHT.get(v["parent"], 1) for c, v in counties.items()}
    for county, n in sorted(allocate(RAIN_GAUGES - len(rain), weights).items()):
        for _ in range(n):
            g = jitter_deg(counties[county]["centre"], rng, COUNTY_JITTER_DEG)
            rain.append((g[0], g[1], county))
    rain_ids = [f"R{i:05d}" for i in range(1, len(rain) + 1)]

    def gauges_near(point):
        near = sorted((km_between(point, (g[0], g[1])), rain_ids[i]) for i, g in enumerate(rain))
        return [(d, sid) for d, sid in near if d <= GAUGE_SEARCH_KM]

    # --- basins ---------------------------------------------------------------------------
    basins = []  # dicts
    for p in cluster:
        basins.append({"centre": p, "county": nearest_county(p, CLUSTER_COUNTIES)})
    scattered = rain[CLUSTER_BASINS * CLUSTER_GAUGES_PER_BASIN:]
    while len(basins) < BASINS:
        anchor = rng.choice(scattered)
        p = jitter_deg((anchor[0], anchor[1]), rng, 0.05)
        if len(gauges_near(p)) >= 3:
            basins.append({"centre": p, "county": anchor[2]})
    per_county = {}
    for i, b in enumerate(basins, start=1):
        b["id"] = f"B{i:04d}"
        per_county[b["county"]] = per_county.get(b["county"], 0) + 1
        b["name"] = f"{counties[b['county']]['name']}山洪小流域{per_county[b['county']]}"
        b["area_km2"] = round(rng.uniform(20.0, 200.0), 1)
        b["wm_mm"] = round(rng.uniform(60.0, 100.0), 1)
        own = sorted(townships.get(b["county"], []))
        b["townships"] = sorted(rng.sample(own, min(len(own), rng.randint(1, 3))))

    # --- gauge weights: normalised 1/d^2 over the 3-6 nearest gauges within 30 km -----------
    gauge_rows = []
    for b in basins:
        near = gauges_near(b["centre"])[: rng.randint(3, 6)]
        assert len(near) >= 2, b["id"]
        inv = [1.0 / max(d, 0.5) ** 2 for d, _ in near]
        ws = [round(x / sum(inv), 4) for x in inv]
        ws[-1] = round(1.0 - sum(ws[:-1]), 4)
        assert ws[-1] > 0 and abs(sum(ws) - 1.0) < 1e-9, b["id"]
        gauge_rows += [(b["id"], sid, f"{w:.4f}") for (_, sid), w in zip(near, ws)]

    # --- critical rainfall -----------------------------------------------------------------
    threshold_rows = []
    for b in basins:
        base = rng.uniform(18.0, 30.0)
        for soil, soil_factor in SOIL_FACTOR.items():
            last = 0.0
            for hours, duration_factor in DURATION_FACTOR.items():
                immediate = round_half(base * duration_factor * soil_factor)
                prepare = round_half(PREPARE_RATIO * immediate)
                assert prepare < immediate and immediate >= last, b["id"]
                last = immediate
                threshold_rows.append((b["id"], hours, soil, f"{prepare:.1f}", f"{immediate:.1f}"))

    # --- water-level stations: one per cluster basin first, then near other basins -----------
    hosts = basins[:CLUSTER_BASINS] + rng.sample(basins[CLUSTER_BASINS:],
                                                  WATER_LEVEL_STATIONS - CLUSTER_BASINS)
    water = []  # (lon, lat, county, basin_id)
    for b in hosts:
        p = offset_km(b["centre"], rng, 1.5)
        nearest = min(basins, key=lambda o: (km_between(p, o["centre"]), o["id"]))
        water.append((p[0], p[1], nearest["county"], nearest["id"]))
    assert {w[3] for w in water[:CLUSTER_BASINS]} == {b["id"] for b in basins[:CLUSTER_BASINS]}
    stage_rows = []
    for i, w in enumerate(water, start=1):
        base = rng.uniform(0.5, 2.0)
        prepare = base + rng.uniform(1.2, 2.0)
        immediate = prepare + rng.uniform(0.8, 1.5)
        stage_rows.append((f"H{i:04d}", w[3], f"{base:.2f}", f"{prepare:.2f}", f"{immediate:.2f}"))

    # --- weather stations -------------------------------------------------------------------
    weather = []
    for county, n in sorted(allocate(WEATHER_STATIONS, weights).items()):
        for _ in range(n):
            p = jitter_deg(counties[county]["centre"], rng, COUNTY_JITTER_DEG)
            weather.append((p[0], p[1], county))

    station_rows = [(sid, "rain", f"{g[0]:.5f}", f"{g[1]:.5f}", g[2], 300)
                    for sid, g in zip(rain_ids, rain)]
    station_rows += [(f"H{i:04d}", "water_level", f"{w[0]:.5f}", f"{w[1]:.5f}", w[2], 300)
                     for i, w in enumerate(water, start=1)]
    station_rows += [(f"W{i:04d}", "weather", f"{w[0]:.5f}", f"{w[1]:.5f}", w[2], 600)
                     for i, w in enumerate(weather, start=1)]

    write_csv(HERE / "stations.csv",
              ["station_id", "kind", "lon", "lat", "county_code", "report_interval_s"], station_rows)
    write_csv(HERE / "basins.csv",
              ["basin_id", "name", "county_code", "lon", "lat", "area_km2", "wm_mm", "townships"],
              [(b["id"], b["name"], b["county"], f"{b['centre'][0]:.5f}", f"{b['centre'][1]:.5f}",
                f"{b['area_km2']:.1f}", f"{b['wm_mm']:.1f}", ";".join(b["townships"]))
               for b in basins])
    write_csv(HERE / "basin_gauges.csv", ["basin_id", "station_id", "weight"], gauge_rows)
    write_csv(HERE / "basin_thresholds.csv",
              ["basin_id", "duration_h", "soil_state", "prepare_mm", "immediate_mm"], threshold_rows)
    write_csv(HERE / "water_level_thresholds.csv",
              ["station_id", "basin_id", "base_stage_m", "prepare_stage_m", "immediate_stage_m"],
              stage_rows)


if __name__ == "__main__":
    main()
