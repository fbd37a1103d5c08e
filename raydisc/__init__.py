"""raydisc: earthquake vs. quarry-blast discrimination on Ray.

Soft-voting CNN ensembles tell natural earthquakes from quarry blasts in seismic
station recordings; training, evaluation, serving and re-labelling of whole archives
run on Ray, and the command line (``raydisc --help``) drives them. From Python
(worked example: ``docs/python.md``)::

    import obspy, raydisc
    ensemble = raydisc.Ensemble.load("runs/sgram/bundle")
    event = obspy.read_events("archive/basin/catalog.xml")[0]
    result = ensemble.classify(obspy.read("archive/basin/waveforms/basin-000003.mseed"),
                               obspy.read_inventory("archive/basin/inventory.xml"), event)
    result.event.predicted_label, result.to_pandas()

Public names (imported on first use, so ``import raydisc`` stays fast):

Ensemble
    A trained bundle (:meth:`Ensemble.load`, local or ``s3://``) with ``.info``,
    ``.classify(stream, inventory, event | origin, picks)`` and
    ``.classify_catalog(catalog, waveforms, inventory)``.
EnsembleInfo
    Architecture, members and metrics, classes, preprocessing, training data.
Classification
    One event's result: ``.stations`` (probabilities, member votes, spread, components,
    pick source), ``.event`` (verdict), ``.rejects``, ``.response`` (the Serve endpoint's
    JSON schema), ``.to_pandas()`` (the re-labelling tables' columns).
CatalogClassification
    A catalog re-labelled in this process: annotated ObsPy catalog, station, event,
    failure and review tables.
NoUsableRecordingError
    No station recording of an event could be classified (``.rejects`` says why).
SeisBenchDiscriminator
    The ensemble as a SeisBench ``WaveformModel`` (``annotate``/``classify``; needs the
    optional ``seisbench`` package).
export_ensemble
    Write the fused, soft-voted ensemble as TorchScript or ONNX (model input ->
    probabilities) for use outside Python and Ray; also ``raydisc export``.
"""
__version__ = "0.1.0"

#: Public name -> module that defines it; loaded by :func:`__getattr__` on first use
#: (they import torch, several seconds).
_LAZY = {
    "Ensemble": "raydisc.api",
    "EnsembleInfo": "raydisc.api",
    "Classification": "raydisc.api",
    "CatalogClassification": "raydisc.api",
    "NoUsableRecordingError": "raydisc.api",
    "SeisBenchDiscriminator": "raydisc.api.seisbench_model",
    "export_ensemble": "raydisc.ensemble.export",
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'raydisc' has no attribute {name!r}")


def __dir__():
    return sorted({*globals(), *_LAZY})
