"""Ensembles: soft voting, event aggregation and the bundle format shared by
evaluation, batch reprocessing and serving."""
from .bundle import BundleError, EnsembleBundle, load_bundle, read_manifest, save_bundle, write_triage_policy
from .fused import FusedEnsemble, fold_batchnorm, fuse_ensemble
from .triage import TriagePolicy
from .voting import aggregate_events, best_member, ensemble_spread, soft_vote

__all__ = [
    "BundleError",
    "EnsembleBundle",
    "FusedEnsemble",
    "aggregate_events",
    "best_member",
    "ensemble_spread",
    "fold_batchnorm",
    "fuse_ensemble",
    "load_bundle",
    "read_manifest",
    "save_bundle",
    "soft_vote",
    "TriagePolicy",
    "write_triage_policy",
]
