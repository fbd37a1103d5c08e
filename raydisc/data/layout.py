"""Where things live in a raydisc waveform archive (local folder or object storage).

::

    {root}/{region}/catalog.xml            QuakeML: events, origins, magnitudes, P/S picks
    {root}/{region}/inventory.xml          StationXML with full instrument responses
    {root}/{region}/waveforms/{event}.mseed  miniSEED, raw counts, 3 components per station
    {root}/{region}/truth.csv              (synthetic archives only) true source type per event

The event id used everywhere (file names, shards, results) is the last path segment of
the QuakeML event resource id, e.g. ``smi:local/raydisc/alpine-000012`` -> ``alpine-000012``.
"""
from __future__ import annotations

from ..storage import join, listdir

CATALOG_FILE = "catalog.xml"
INVENTORY_FILE = "inventory.xml"
WAVEFORM_DIR = "waveforms"
TRUTH_FILE = "truth.csv"
RESOURCE_ID_PREFIX = "smi:local/raydisc/"


def catalog_uri(root: str, region: str) -> str:
    return join(root, region, CATALOG_FILE)


def inventory_uri(root: str, region: str) -> str:
    return join(root, region, INVENTORY_FILE)


def waveform_uri(root: str, region: str, event_id: str) -> str:
    return join(root, region, WAVEFORM_DIR, f"{event_id}.mseed")


def truth_uri(root: str, region: str) -> str:
    return join(root, region, TRUTH_FILE)


def event_id_from_resource_id(resource_id: str) -> str:
    return str(resource_id).rstrip("/").rsplit("/", 1)[-1]


def list_regions(root: str) -> list[str]:
    """Regions in an archive: sub-folders that hold a catalog."""
    return [name for name in listdir(root) if CATALOG_FILE in listdir(join(root, name))]
