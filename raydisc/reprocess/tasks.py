"""Planning re-labelling: what the workers need of the bundle, one task per chunk of
catalog events, and the chunk fingerprint that tells a complete chunk on disk.

Tasks are plain data, cheap to ship; they travel to Ray Data pickled, as a bytes column
(:func:`raydisc.data.chunks.task_dataset`), which is native to Arrow.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Sequence

from ..config import PreprocessConfig, with_raw_data
from ..data.chunks import chunked, index_region
from ..data.ingest import CatalogEntry, IngestError, Reject, StationInfo
from ..ensemble import read_manifest
from ..ensemble.bundle_format import triage_policy_of
from ..ensemble.triage import TriagePolicy, review_threshold
from ..models import input_kind_of
from .sources import RegionSource


@dataclass(frozen=True)
class BundleInfo:
    """What the workers need to know of the bundle without loading weights."""

    uri: str
    bundle_id: str
    class_names: tuple[str, ...]
    n_members: int
    input_kind: str
    input_shape: tuple[int, ...]
    preprocess: PreprocessConfig
    #: Catalog event type -> class of the bundle (its verdicts are named by it).
    label_map: dict[str, int]
    #: The bundle's triage policy (temperatures, confidence threshold).
    triage: TriagePolicy | None = None
    #: Confidence below which an event goes to review, overriding the policy's threshold.
    review_below: float | None = None

    @classmethod
    def read(cls, uri: str, reading: dict | None = None, review_below: float | None = None) -> "BundleInfo":
        """The bundle at ``uri``; ``reading``: raw-data fields of its preprocessing config
        to replace for this archive (channel priority, pick source, ...; see
        :func:`raydisc.config.with_raw_data`); ``review_below``: a confidence threshold in
        [0, 1] replacing the bundle's triage threshold."""
        manifest = read_manifest(uri)
        preprocess = with_raw_data(PreprocessConfig.from_dict(manifest["preprocess_config"]), reading or {})
        if review_below is not None:
            review_threshold(review_below)  # ValueError outside [0, 1]
        return cls(uri, manifest["bundle_id"], tuple(manifest["class_names"]), len(manifest["members"]),
                   input_kind_of(manifest["architecture"]), tuple(manifest["input_shape"]), preprocess,
                   dict(manifest["label_map"]), triage_policy_of(uri, manifest), review_below)

    @property
    def triage_threshold(self) -> float | str | None:
        """The confidence threshold in force: ``review_below`` if given, else the policy's."""
        if self.review_below is not None:
            return self.review_below
        return self.triage.confidence_threshold if self.triage is not None else None


@dataclass(frozen=True)
class ChunkTask:
    """One output partition: catalog ``entries`` of one region (unparsed: plain data,
    cheap to ship; the worker parses them)."""

    source: RegionSource
    index: int
    entries: tuple[CatalogEntry, ...]
    stations: dict[str, StationInfo]
    output: str
    bundle: BundleInfo

    @property
    def key(self) -> str:
        return f"{self.source.region}/{self.index:05d}"


def chunk_fingerprint(task: ChunkTask) -> str:
    """SHA-256 of the chunk's event ids (in order), the bundle id and the triage
    threshold in force (when it can send events to review), so a re-run with another
    ``review_below`` redoes the chunk."""
    threshold = review_threshold(task.bundle.triage_threshold)
    triage = [f"review_below={threshold!r}"] if threshold > 0 else []
    text = "\n".join([task.bundle.bundle_id, *triage, *(e.event_id for e in task.entries)])
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass
class RegionPlan:
    """One region's chunk tasks, or the ``error`` that its catalog or inventory gave."""

    source: RegionSource
    tasks: list[ChunkTask] = field(default_factory=list)
    error: Reject | None = None


def plan_chunks(sources: Sequence[RegionSource], bundle: BundleInfo, output: str, events_per_chunk: int) -> list[RegionPlan]:
    """Index catalogs and read inventories; a region whose catalog or inventory cannot be
    read gets an ``error`` (recorded in the failures table) instead of tasks. Reading the
    events' origins and picks is left to the chunk tasks; an entry that cannot be read
    is a failure row of its chunk."""
    plans = []
    for source in sources:
        plan = RegionPlan(source)
        try:
            entries, stations = index_region(source.catalog, source.inventory)
        except IngestError as exc:
            what = "catalog" if source.catalog in str(exc) else "inventory"
            plan.error = Reject(source.region, "*", "*", f"unreadable_{what}", str(exc),
                                source.catalog if what == "catalog" else source.inventory)
            plans.append(plan)
            continue
        for index, entries_of_chunk in enumerate(chunked(entries, events_per_chunk)):
            plan.tasks.append(ChunkTask(source, index, entries_of_chunk, stations, output, bundle))
        plans.append(plan)
    return plans


__all__ = ["BundleInfo", "ChunkTask", "RegionPlan", "chunk_fingerprint", "plan_chunks"]
