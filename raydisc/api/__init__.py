"""raydisc from Python: load an ensemble, classify events from ObsPy objects.

See :class:`Ensemble` (:meth:`Ensemble.load`, :attr:`Ensemble.info`,
:meth:`Ensemble.classify`, :meth:`Ensemble.classify_catalog`), :class:`Classification`
and :class:`CatalogClassification`; worked example in ``docs/python.md``.
"""
from .catalog import CatalogClassification
from .classification import Classification, NoUsableRecordingError
from .ensemble import Ensemble, EnsembleInfo

__all__ = ["CatalogClassification", "Classification", "Ensemble", "EnsembleInfo", "NoUsableRecordingError"]
