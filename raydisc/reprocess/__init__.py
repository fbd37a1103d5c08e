"""Batch reprocessing: classify every event and station of whole archives (many regions)
with an ensemble bundle, as a resumable Ray Data pipeline. See :mod:`.pipeline`."""
from .pipeline import ReprocessConfig, format_summary, reprocess_archives
from .sources import RegionSource, sources_from_archive

__all__ = ["ReprocessConfig", "RegionSource", "format_summary", "reprocess_archives", "sources_from_archive"]
