"""Markdown report of a leave-one-region-out experiment, rebuilt from its stored tables
only (no training, no Ray).

Modules: :mod:`.results` (reading the tables), :mod:`.tables` (Markdown sections),
:mod:`.figures` (PNG figures), :mod:`.document` (the report file).

Read from the experiment directory ``RUN_DIR`` (a local path or an ``s3://`` URI)::

    results/metrics.parquet   tidy results (``results/metrics.csv`` is the fallback): the
                              concatenation of raydisc.evaluation.metrics.report_table
                              outputs, one row per (architecture, target, stage, model,
                              level, metric, class):
        model         "best_member" (best single member) | "ensemble" (soft vote)
        level         "station" (one verdict per recording) | "event"
        metric        n, accuracy, balanced_accuracy, macro_f1, log_loss,
                      expected_calibration_error (class "all"); precision, recall, f1,
                      support (class = class name); "predicted_as:<name>" (class = true
                      class, value = count)
        class, value  as above; accuracies are fractions
        architecture  "spectrogram_cnn" | "waveform_cnn"
        target        the held-out region the row is evaluated on (its test split)
        stage         "pretrained" (trained on the other regions, not fine-tuned) |
                      "finetuned" (that model fine-tuned on the target) |
                      "target_only" (trained from scratch on the target alone)
        split, regions, event_rule, bundle_id   carried along from the evaluation
    experiment.json           optional: the experiment's configs (shown as settings)
    sweep/results.parquet     optional: fine-tuning data sweep, columns fraction, seed,
                              mode ("finetuned" | "scratch"), strategy, split, level,
                              metric, value
    sweep/learning_curve.png  optional: the sweep's plot (copied next to the report)

Written: the report (default ``RUN_DIR/report.md``) and its PNG figures in the folder
``<report stem>_figures/`` beside it (``RUN_DIR/report_figures/`` by default), linked
relatively so the pair can be moved or downloaded together.
"""
from .document import write_report
from .results import load_results
from .tables import MISSING, UNDEFINED

__all__ = ["load_results", "write_report", "MISSING", "UNDEFINED"]
