"""A raydisc ensemble as a SeisBench ``WaveformModel`` (optional: needs ``seisbench``).

For SeisBench users: ``SeisBenchDiscriminator(raydisc.Ensemble.load(uri))`` has
SeisBench's ``annotate(stream)`` and ``classify(stream, p_times=...)``. SeisBench cuts
windows of :attr:`in_samples` samples at the bundle's ``target_rate_hz`` (it resamples
the stream itself) every ``stride`` samples; each window is read as the window the
ensemble was trained on, whose P arrival lies :attr:`pred_sample` samples in
(``padding_s - window_start_s`` seconds), and goes through the project's preprocessing
(:func:`raydisc.features.preprocess`) and the fused, soft-voted ensemble
(:class:`raydisc.ensemble.export.SoftVotedEnsemble`). ``annotate`` gives one trace per
class and station, ``SeisBenchDiscriminator_<class>``: the probability of the class if
the P arrival were at that time.

What differs from :meth:`raydisc.api.Ensemble.classify`: SeisBench passes no station
metadata, so no instrument response is removed (the inputs are scale-invariant, so only
the response's shape within 0.5-18 Hz matters; flat for velocity sensors), numbered
horizontals are taken as N and E without rotation (SeisBench's
``flexible_horizontal_components``), and the band choice among several sensors is
SeisBench's. Where StationXML and picks are at hand, ``Ensemble.classify`` reads the
data exactly as in training.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import obspy
import torch

try:
    import seisbench.models as _sbm
    import seisbench.util as _sbu
except ImportError as exc:  # an optional extra
    raise ImportError("raydisc.api.seisbench_model needs the seisbench package: pip install seisbench") from exc

from ..ensemble.export import SoftVotedEnsemble
from ..features import preprocess
from ..features.preprocess import cut_window_samples
from .ensemble import Ensemble

CITATION = ("Kasburg, C., Müller, A., Eulenfeld, T., Breuer, A. & Kukowski, N. (2024). Discrimination of "
            "earthquakes and quarry blasts with ensembles of convolutional neural networks. Bulletin of the "
            "Seismological Society of America 114(2). doi:10.1785/0120230198")


class SeisBenchDiscriminator(_sbm.WaveformModel):
    """The ensemble of ``ensemble`` (:class:`raydisc.api.Ensemble`) as a SeisBench
    point-prediction model: windows of :attr:`in_samples` samples (the bundle's window
    plus padding, e.g. 4000 at 40 Hz) -> class probabilities ``(n_classes,)`` for the P
    arrival at :attr:`pred_sample`. ``stride_s``: default seconds between windows."""

    _annotate_args = {**_sbm.WaveformModel._annotate_args,
                      "p_times": ("classify: P arrival per station, {'NET.STA.LOC': UTCDateTime}", None)}

    def __init__(self, ensemble: Ensemble, stride_s: float = 1.0):
        bundle = ensemble.bundle
        config = bundle.preprocess_config
        rate = float(config.target_rate_hz)
        super().__init__(
            component_order="ZNE", sampling_rate=rate, output_type="point",
            in_samples=cut_window_samples(rate, config),
            pred_sample=int(round((config.padding_s - config.window_start_s) * rate)),
            labels=list(bundle.class_names), default_args={"stride": max(1, int(round(stride_s * rate)))},
            citation=CITATION)
        self.config = config
        self.input_kind = bundle.input_kind
        self.class_names = list(bundle.class_names)
        self.soft_voted = SoftVotedEnsemble(bundle)

    def annotate_batch_pre(self, batch: torch.Tensor, argdict: dict[str, Any]) -> torch.Tensor:
        """Raw windows ``(b, 3, in_samples)`` (Z, N, E; an absent component all zero) ->
        model inputs ``(b, *input_shape)`` by the project's preprocessing, without
        instrument correction (unit sensitivity: see the module docstring)."""
        counts = batch.detach().cpu().numpy().astype(np.float64)
        present = np.abs(counts).max(axis=2) > 0
        inputs = preprocess(counts, float(self.sampling_rate), np.ones(counts.shape[:2]), self.config,
                            present=present)[self.input_kind]
        return torch.from_numpy(np.ascontiguousarray(inputs, dtype=np.float32)).to(batch.device)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Model inputs ``(b, *input_shape)`` -> soft-voted probabilities ``(b, n_classes)``."""
        return self.soft_voted(x)

    def classify_aggregate(self, annotations: obspy.Stream, argdict: dict[str, Any]) -> "_sbu.ClassifyOutput":
        """Per station, the probabilities of the window whose P arrival is nearest to
        ``p_times[NET.STA.LOC]`` (``classify(stream, p_times={...})``, UTCDateTime or
        POSIX s), and the event verdict as their mean. Returns a ``ClassifyOutput``
        with ``stations`` ``{NET.STA.LOC: {class: p}}`` and ``event`` ``{class: p}``."""
        p_times = {k: obspy.UTCDateTime(v) for k, v in (argdict.get("p_times") or {}).items()}
        if not p_times:
            raise ValueError("classify needs p_times={'NET.STA.LOC': P arrival time}; annotate needs none")
        stations: dict[str, dict[str, float]] = {}
        for key, time in p_times.items():
            net, sta, loc = (key.split(".") + ["", ""])[:3]
            probs = {}
            for name in self.class_names:
                traces = annotations.select(network=net, station=sta, location=loc,
                                            channel=f"{self.__class__.__name__}_{name}")
                trace = next((t for t in traces if t.stats.starttime <= time <= t.stats.endtime), None)
                if trace is None:
                    break
                probs[name] = float(trace.data[int(round((time - trace.stats.starttime) * trace.stats.sampling_rate))])
            if len(probs) == len(self.class_names):
                stations[key] = probs
        event = ({c: float(np.mean([p[c] for p in stations.values()])) for c in self.class_names}
                 if stations else {})
        return _sbu.ClassifyOutput(self.name, stations=stations, event=event)


__all__ = ["CITATION", "SeisBenchDiscriminator"]
