"""Synthetic sites of any size, for scale tests and benchmarks (``crowdsafe site synth``).

A synthetic site lays ``n`` zones on a square grid of cells ~55 m a side (their polygons, for
CAP and the command-centre plan), gives each a kind (60 % walkway, 30 % queuing, 10 %
stairway), a walkable area inside its cell and sources: one camera everywhere, a gate in half
the zones and a Wi-Fi sensor in a fifth. Everything is drawn from ``random.Random(seed)``, so one
seed gives one site, byte for byte.

>>> site = synthetic_site(10, seed=1)
>>> len(site.zones), site.zones[0].id, len(site.sources) >= 10
(10, 'z000000', True)
>>> synthetic_site(10, seed=1) == site
True
"""

from __future__ import annotations

import math
import random
from pathlib import Path

from streams.config.site import Site, SiteError, load_site

# The grid's south-west corner (near Guangzhou railway station) and its cell, in degrees.
ORIGIN = (23.10, 113.20)
CELL_DEG = 0.0005
_M_PER_DEG_LAT = 111_320.0
KINDS = (("walkway", 0.6), ("queuing", 0.3), ("stairway", 0.1))
THRESHOLDS = {
    "walkway": (2.0, 3.0),
    "queuing": (4.0, 4.7),
    "stairway": (1.54, 2.7),
}


def synthetic_data(n_zones: int, seed: int = 0) -> dict:
    """The site as the parsed TOML of a site file would hold it (see :func:`synthetic_toml`)."""
    if n_zones < 1:
        raise ValueError("a site needs at least one zone")
    rng = random.Random(seed)
    cols = math.ceil(math.sqrt(n_zones))
    lat0, lon0 = ORIGIN
    cell_m2 = (CELL_DEG * _M_PER_DEG_LAT) * (
        CELL_DEG * _M_PER_DEG_LAT * math.cos(math.radians(lat0))
    )
    kinds, weights = zip(*KINDS, strict=True)
    zones, sources = [], []
    for i in range(n_zones):
        zone_id = f"z{i:06d}"
        kind = rng.choices(kinds, weights)[0]
        row, col = divmod(i, cols)
        lat, lon = round(lat0 + row * CELL_DEG, 6), round(lon0 + col * CELL_DEG, 6)
        top, right = round(lat + CELL_DEG, 6), round(lon + CELL_DEG, 6)
        zones.append({
            "id": zone_id,
            "name": f"Zone {i} ({kind})",
            "kind": kind,
            # Walkable part of the cell: pillars, kiosks and planting take the rest.
            "area_m2": round(cell_m2 * rng.uniform(0.4, 0.95), 1),
            "polygon": [[lat, lon], [lat, right], [top, right], [top, lon]],
        })  # fmt: skip
        sources.append({"id": f"cam-{zone_id}", "kind": "camera", "zones": [zone_id],
                        "coverage": round(rng.uniform(0.5, 1.0), 2)})  # fmt: skip
        if rng.random() < 0.5:
            sources.append({"id": f"gate-{zone_id}", "kind": "gate", "zones": [zone_id]})
        if rng.random() < 0.2:
            sources.append({"id": f"wifi-{zone_id}", "kind": "sensor", "zones": [zone_id],
                            "scale": round(rng.uniform(1.2, 2.0), 2)})  # fmt: skip
    return {
        "site": {"id": f"synthetic-{n_zones}-{seed}", "name": f"Synthetic site, {n_zones} zones",
                 "timezone": "Asia/Shanghai"},
        "defaults": {"thresholds": {k: {"warning": w, "critical": c}
                                    for k, (w, c) in THRESHOLDS.items()}},
        "zones": zones,
        "sources": sources,
    }  # fmt: skip


def synthetic_site(n_zones: int, seed: int = 0) -> Site:
    """A validated synthetic :class:`Site` of ``n_zones`` zones (deterministic by ``seed``)."""
    return Site.model_validate(synthetic_data(n_zones, seed))


def synthetic_toml(n_zones: int, seed: int = 0) -> str:
    """The synthetic site as a site file's text (one line per zone and per source).

    >>> import tomllib
    >>> tomllib.loads(synthetic_toml(3, seed=2)) == synthetic_data(3, seed=2)
    True
    """
    data = synthetic_data(n_zones, seed)
    lines = [f"# A synthetic site: crowdsafe site synth --zones {n_zones} --seed {seed}"]
    # Arrays of inline tables, a line per item (100,000 zones: ~30 MB), before any [table]
    # header, as TOML wants top-level keys.
    for table in ("zones", "sources"):
        lines += ["", f"{table} = ["]
        lines += [f"  {_value(item)}," for item in data[table]]
        lines.append("]")
    lines += ["", "[site]", *(f"{k} = {_value(v)}" for k, v in data["site"].items())]
    for kind, t in data["defaults"]["thresholds"].items():
        lines += ["", f"[defaults.thresholds.{kind}]"]
        lines += [f"{k} = {_value(v)}" for k, v in t.items()]
    return "\n".join(lines) + "\n"


def write_synthetic_site(path: str | Path, n_zones: int, seed: int = 0) -> Site:
    """Write the synthetic site file to ``path`` and return it as loaded from there."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(synthetic_toml(n_zones, seed))
    try:
        return load_site(path)
    except SiteError as exc:  # a defect of this generator, not of a user's file
        raise RuntimeError(f"generated site does not load: {exc}") from exc


def _value(v: object) -> str:
    """A TOML value of the few types a synthetic site holds.

    >>> _value({"a": [1, 2.5], "b": "x\\"y"})
    '{a = [1, 2.5], b = "x\\\\"y"}'
    """
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int | float):
        return repr(v)
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(v, list):
        return "[" + ", ".join(_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{k} = {_value(x)}" for k, x in v.items()) + "}"
    raise TypeError(f"no TOML for {type(v).__name__}")
