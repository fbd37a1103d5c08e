"""Ensembles: soft voting, event aggregation and the bundle format shared by
evaluation, batch reprocessing and serving."""
from .bundle import BundleError, EnsembleBundle, load_bundle, read_manifest, save_bundle
from .voting import aggregate_events, best_member, ensemble_spread, soft_vote

__all__ = [
    "BundleError",
    "EnsembleBundle",
    "aggregate_events",
    "best_member",
    "ensemble_spread",
    "load_bundle",
    "read_manifest",
    "save_bundle",
    "soft_vote",
]
