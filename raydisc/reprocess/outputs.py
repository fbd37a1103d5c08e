"""What a reprocessing run writes, and where (local folder or object storage)::

    {out}/_reprocess.json                        bundle id + preprocessing fingerprint (a run
                                                 into the folder with another bundle is refused)
    {out}/stations/{region}/chunk-00000.parquet  one row per classified station recording
    {out}/events/{region}/chunk-00000.parquet    one row per classified event
    {out}/failures/{region}/chunk-00000.parquet  unusable inputs with reasons (ingest Reject rows)
    {out}/failures/{region}/region.parquet       a catalog or inventory that could not be read
    {out}/catalogs/{region}.xml                  input catalog annotated with the verdicts (QuakeML)
    {out}/review/{region}.csv, {region}.txt      events for an analyst: verdict contradicts the catalog
                                                 type, or triage says review (low confidence)
    {out}/summary.json                           counts of the last run

Every file is written atomically (:func:`raydisc.storage.open_atomic`). Per chunk the
failures and events files are written before the stations file, so an existing
stations file means the chunk is complete; its footer metadata fingerprints the chunk's
events and bundle, and a re-run skips the chunks whose fingerprint still matches.
"""
from __future__ import annotations

import csv
import io
import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from ..data.layout import event_id_from_resource_id
from ..data.chunks import write_rejects
from ..labels import class_in, event_type_of
from ..storage import exists, filesystem, join, listdir, open_atomic, read_bytes, write_bytes_atomic

CLAIM_FILE = "_reprocess.json"
TABLES = ("stations", "events", "failures")
COMMENT_PREFIX = "raydisc reprocess"
#: Key of the stations file's footer metadata that fingerprints the chunk's events.
CHUNK_EVENTS_KEY = "raydisc.chunk_events_sha256"


def chunk_name(index: int) -> str:
    return f"chunk-{index:05d}.parquet"


def table_uri(output: str, table: str, region: str, index: int | None = None) -> str:
    """File of one chunk (``index``) or the region-level failures file (``index=None``)."""
    return join(output, table, region, chunk_name(index) if index is not None else "region.parquet")


def prob_columns(class_names) -> list[str]:
    return [f"p_{name}" for name in class_names]


def station_schema(class_names, n_members: int) -> pa.Schema:
    """Station-level results; probabilities are dimensionless, ``member_probabilities``
    is ``(n_members, n_classes)`` per row, ``distance_km`` epicentral (km, NaN without
    station coordinates), rate in Hz; ``components`` the ones recorded (``ZNE``, ``Z``,
    ...), ``pick_source`` where the window's P arrival came from (``catalog``,
    ``predicted``, ``origin``), ``response`` what instrument correction was possible
    (``full``, ``sensitivity``, ``none``)."""
    n_classes = len(class_names)
    return pa.schema(
        [
            ("event_id", pa.string()), ("region", pa.string()), ("network", pa.string()),
            ("station", pa.string()), ("location", pa.string()),
            ("components", pa.string()), ("pick_source", pa.string()), ("response", pa.string()),
            ("origin_time", pa.timestamp("ms", tz="UTC")), ("catalog_type", pa.string()),
            ("catalog_class", pa.int8()), ("distance_km", pa.float64()), ("sampling_rate", pa.float64()),
            *[(c, pa.float64()) for c in prob_columns(class_names)],
            ("verdict", pa.string()), ("verdict_class", pa.int8()), ("probability", pa.float64()),
            ("spread", pa.float64()),
            ("member_probabilities", pa.list_(pa.list_(pa.float32(), n_classes), n_members)),
            ("bundle_id", pa.string()), ("input_hash", pa.string()), ("source", pa.string()),
        ]
    )


def event_schema(class_names) -> pa.Schema:
    """Event-level results: mean of the station probabilities (:func:`aggregate_events`);
    ``confidence`` (calibrated probability of the verdict), ``disagreement`` (mutual
    information between members, nats) and ``triage`` (``auto`` / ``review``):
    :mod:`raydisc.ensemble.triage`."""
    return pa.schema(
        [
            ("event_id", pa.string()), ("region", pa.string()),
            ("origin_time", pa.timestamp("ms", tz="UTC")), ("magnitude", pa.float64()),
            ("catalog_type", pa.string()), ("catalog_class", pa.int8()),
            *[(c, pa.float64()) for c in prob_columns(class_names)],
            ("verdict", pa.string()), ("verdict_class", pa.int8()), ("probability", pa.float64()),
            ("n_stations", pa.int32()), ("spread", pa.float64()), ("contradicts_catalog", pa.bool_()),
            ("confidence", pa.float64()), ("disagreement", pa.float64()), ("triage", pa.string()),
            ("bundle_id", pa.string()),
        ]
    )


def build_table(columns: dict, schema: pa.Schema) -> pa.Table:
    """Table of ``schema`` from per-column lists / arrays (``member_probabilities``: a
    float32 array ``(rows, n_members, n_classes)``)."""
    arrays = []
    n = len(columns["event_id"])
    for field in schema:
        values = columns[field.name]
        if field.name == "member_probabilities":
            member = np.ascontiguousarray(values, dtype=np.float32)
            n_members, n_classes = field.type.list_size, field.type.value_type.list_size
            flat = pa.array(member.reshape(-1)) if n else pa.array([], pa.float32())
            inner = pa.FixedSizeListArray.from_arrays(flat, n_classes)
            arrays.append(pa.FixedSizeListArray.from_arrays(inner, n_members))
        elif field.name == "origin_time":
            arrays.append(pa.array([int(round(t * 1000)) for t in values], type=pa.int64()).cast(field.type))
        else:
            arrays.append(pa.array(list(values) if isinstance(values, np.ndarray) else values, type=field.type))
    return pa.Table.from_arrays(arrays, schema=schema)


def write_failures(uri: str, rejects) -> None:
    """The failures file: ingest's reject rows, by the one reject writer."""
    write_rejects(uri, rejects)


def _read(uri: str) -> pa.Table:
    fs, path = filesystem(uri)
    with fs.open(path, "rb") as f:
        return pq.read_table(io.BytesIO(f.read()))


def read_results(output: str, table: str, regions=None) -> pa.Table | None:
    """All complete files of ``table`` (``stations``, ``events`` or ``failures``) for
    ``regions`` (default all), concatenated in region and chunk order; None if none."""
    parts = []
    for region in regions or listdir(join(output, table)):
        for name in listdir(join(output, table, region)):
            if name.endswith(".parquet"):
                parts.append(_read(join(output, table, region, name)))
    if not parts:
        return None
    return pa.concat_tables(parts, promote_options="default")


def chunk_rows(output: str, table: str, region: str, index: int) -> int:
    """Row count of one chunk file, from the Parquet footer."""
    fs, path = filesystem(table_uri(output, table, region, index))
    with fs.open(path, "rb") as f:
        return pq.ParquetFile(f).metadata.num_rows


def chunk_fingerprint_on_disk(output: str, region: str, index: int) -> str | None:
    """The chunk fingerprint recorded in a complete chunk's stations file, or None if
    the chunk is not complete."""
    uri = table_uri(output, "stations", region, index)
    if not exists(uri):
        return None
    fs, path = filesystem(uri)
    with fs.open(path, "rb") as f:
        metadata = pq.ParquetFile(f).schema_arrow.metadata or {}
    value = metadata.get(CHUNK_EVENTS_KEY.encode())
    return value.decode() if value else None


def remove_chunks_from(output: str, region: str, first: int) -> int:
    """Delete chunk files with index >= ``first`` of every table (stations first, so a
    crash in between leaves no chunk that looks complete); returns how many."""
    removed = 0
    for table in ("stations", "events", "failures"):
        for name in listdir(join(output, table, region)):
            if name.startswith("chunk-") and name.endswith(".parquet") and int(name[6:11]) >= first:
                fs, path = filesystem(join(output, table, region, name))
                fs.rm(path)
                removed += 1
    return removed


def claim_output(output: str, bundle_manifest: dict) -> None:
    """Record the bundle in a new output folder, or refuse one made with another bundle
    (mixing verdicts of two bundles in one table would be silently inconsistent)."""
    uri = join(output, CLAIM_FILE)
    info = {"bundle_id": bundle_manifest["bundle_id"], "preprocess_fingerprint": bundle_manifest["preprocess_fingerprint"]}
    if exists(uri):
        old = json.loads(read_bytes(uri))
        if old.get("bundle_id") != info["bundle_id"]:
            raise ValueError(
                f"{output} holds results of bundle {old.get('bundle_id')}, not {info['bundle_id']}; "
                "use a new output folder for another bundle"
            )
        return
    write_bytes_atomic(uri, json.dumps(info, indent=2).encode())


#: Children of a QuakeML ``event`` that precede its comments (ObsPy writes them in this
#: order); a new ``type`` goes after the preferred-id elements.
_BEFORE_TYPE = ("preferredOriginID", "preferredMagnitudeID", "preferredFocalMechanismID")
_BEFORE_COMMENT = (*_BEFORE_TYPE, "type", "typeCertainty", "description", "comment")


def _insert_after(parent, element, names) -> None:
    """Insert ``element`` into ``parent`` after its last child whose local name is in
    ``names`` (first when there is none), indented like its siblings."""
    from lxml import etree

    position, previous = 0, None
    for i, child in enumerate(parent):
        if isinstance(child.tag, str) and etree.QName(child).localname in names:
            position, previous = i + 1, child
    if previous is not None:
        element.tail = previous.tail
    elif len(parent):
        element.tail = parent.text
    parent.insert(position, element)


def annotate_catalog(catalog_uri: str, events: pa.Table | None, bundle_id: str, label_map: dict[str, int],
                     output_uri: str) -> None:
    """Write a copy of the QuakeML catalog where each classified event gets a comment
    (verdict, its probability, bundle id, original type) and the verdict's event type,
    both per ``label_map``, the bundle's (:func:`raydisc.labels.event_type_of`).

    A verdict that agrees with the original type's class keeps the original (more
    specific) type, e.g. ``mining explosion`` stays so for a ``blast`` verdict.

    The copy is the input document edited in place with lxml (milliseconds per thousand
    events; ObsPy would take ~10 ms per event to parse and as much to write): everything
    else in it is kept as it was. Comments get ``smi:local/{uuid}`` ids, as ObsPy gives them.
    """
    import uuid

    from lxml import etree

    root = etree.fromstring(read_bytes(catalog_uri), etree.XMLParser(remove_blank_text=False, huge_tree=True))
    rows = {r["event_id"]: r for r in (events.to_pylist() if events is not None else [])}
    for event in root.iter("{*}event"):
        ns = etree.QName(event).namespace
        tag = (lambda name: f"{{{ns}}}{name}") if ns else (lambda name: name)
        row = rows.get(event_id_from_resource_id(event.get("publicID") or ""))
        type_element = event.find(tag("type"))
        original = (type_element.text or "").strip() if type_element is not None else ""
        if row is None:
            text = f"{COMMENT_PREFIX}: no usable recording, not classified; bundle {bundle_id}"
        else:
            text = (f"{COMMENT_PREFIX}: verdict {row['verdict']} (probability {row['probability']:.4f}, "
                    f"{row['n_stations']} stations, spread {row['spread']:.4f}); bundle {bundle_id}; "
                    f"original event_type {original or 'unset'!s}")
            if class_in(original, label_map) != row["verdict_class"]:
                if type_element is None:
                    type_element = etree.Element(tag("type"))
                    _insert_after(event, type_element, _BEFORE_TYPE)
                type_element.text = event_type_of(row["verdict_class"], label_map)
        comment = etree.Element(tag("comment"), id=f"smi:local/{uuid.uuid4()}")
        etree.SubElement(comment, tag("text")).text = text
        _insert_after(event, comment, _BEFORE_COMMENT)
    write_bytes_atomic(output_uri, etree.tostring(root, xml_declaration=True, encoding="utf-8"))


REVIEW_COLUMNS = ("event_id", "origin_time", "magnitude", "catalog_type", "verdict", "probability", "n_stations",
                  "spread", "confidence", "disagreement", "triage", "reason")
#: Why an event is on the review list (its ``reason`` column).
REVIEW_REASONS = ("contradicts_catalog", "low_confidence", "both")


def review_reason(row: dict) -> str | None:
    """Why an event row goes to the analyst (:data:`REVIEW_REASONS`), or None."""
    contradicts, low = bool(row["contradicts_catalog"]), row.get("triage") == "review"
    return "both" if contradicts and low else "contradicts_catalog" if contradicts else "low_confidence" if low else None


def _fixed(value: float | None, digits: int = 4) -> str:
    # Chunks written before triage existed have no confidence columns (null when read).
    return "" if value is None else f"{value:.{digits}f}"


def write_review(events: pa.Table | None, region: str, bundle_id: str, csv_uri: str, text_uri: str) -> int:
    """List the events an analyst should look at (CSV, most confident first): those whose
    verdict contradicts the catalog's type and those triage sends to review, with a
    ``reason`` column (:data:`REVIEW_REASONS`), and a short text summary; returns how
    many contradict the catalog."""
    rows = [{**r, "reason": reason} for r in (events.to_pylist() if events is not None else [])
            if (reason := review_reason(r)) is not None]
    rows.sort(key=lambda r: (-r["probability"], r["event_id"]))
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=REVIEW_COLUMNS, lineterminator="\n", extrasaction="ignore")
    writer.writeheader()
    for r in rows:
        writer.writerow({**r, "origin_time": r["origin_time"].isoformat(), "probability": f"{r['probability']:.4f}",
                         "spread": f"{r['spread']:.4f}", "magnitude": f"{r['magnitude']:.2f}",
                         "confidence": _fixed(r.get("confidence")), "disagreement": _fixed(r.get("disagreement"))})
    write_bytes_atomic(csv_uri, text.getvalue().encode())
    n_events = events.num_rows if events is not None else 0
    contradicting = [r for r in rows if r["reason"] != "low_confidence"]
    changes: dict[tuple[str, str], int] = {}
    for r in contradicting:
        changes[(r["catalog_type"], r["verdict"])] = changes.get((r["catalog_type"], r["verdict"]), 0) + 1
    low = sum(r["reason"] != "contradicts_catalog" for r in rows)
    lines = [f"region {region}: {len(contradicting)} of {n_events} classified events contradict the catalog type, "
             f"{low} have a low confidence (triage: review); {len(rows)} to review (bundle {bundle_id})"]
    lines += [f"  catalog {old!r} -> verdict {new!r}: {n}" for (old, new), n in sorted(changes.items())]
    lines += [f"  {r['event_id']}  {r['catalog_type']} -> {r['verdict']} (p={r['probability']:.3f}, "
              f"confidence {_fixed(r.get('confidence'), 3)}, {r['n_stations']} stations; {r['reason']})" for r in rows[:20]]
    if len(rows) > 20:
        lines.append(f"  ... {len(rows) - 20} more in {csv_uri}")
    write_bytes_atomic(text_uri, ("\n".join(lines) + "\n").encode())
    return len(contradicting)


def write_json(uri: str, data: dict) -> None:
    with open_atomic(uri) as f:
        f.write(json.dumps(data, indent=2, sort_keys=True).encode())


__all__ = [
    "TABLES", "table_uri", "prob_columns", "station_schema", "event_schema", "build_table", "write_failures",
    "read_results", "claim_output", "annotate_catalog", "write_review", "chunk_rows",
]
