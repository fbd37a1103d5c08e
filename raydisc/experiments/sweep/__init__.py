"""How much target-region data does fine-tuning need? A Ray Tune sweep over the fraction
of the target region's training events, fine-tuned from a pretrained bundle against
trained from scratch, with learning curves.

One Tune trial is one combination of (fraction, seed, mode, strategy, learning rate):

* it draws its training events with :func:`sample_fraction_events` (by event, stratified
  by class, nested across fractions, reproducible from the seed);
* ``mode="finetuned"``: a one-member fine-tune of the pretrained bundle's best member
  (:func:`~raydisc.training.finetune.finetune_ensemble`, ``init_members=[best]``, layers
  frozen per ``strategy``); ``mode="scratch"``: one member of the bundle's architecture
  and hyper-parameters trained from random weights on the same events
  (:func:`~raydisc.training.ensemble.train_ensemble`; strategy ``"none"``);
* both train on Ray Train (a ``TorchTrainer`` run nested inside the Tune trial), stop
  early on the target's *whole* validation split, and are evaluated
  (:func:`~raydisc.evaluation.evaluate.evaluate`) on the target's validation and test
  splits at station and event level; the trial reports those metrics to Tune once.

Layout of a sweep directory (a local path or an object-store URI)::

    {out_dir}/sweep_config.json     SweepConfig + bundle, shards, target (checked on resume)
    {out_dir}/tune/sweep/           the Tune experiment (state for Tuner.restore)
    {out_dir}/trials/<trial>/attempt-N/   the trial's training run (bundle, history, evaluations)
    {out_dir}/trials/<trial>/metrics.json the trial's reported metrics (written last)
    {out_dir}/results.parquet|csv   tidy table: fraction, seed, mode, strategy, learning_rate,
                                    split, level, metric, value
    {out_dir}/failures.csv          failed trials: parameters, error, traceback (always written)
    {out_dir}/learning_curve.png    test accuracy vs fraction (log x), station and event level

Table rows: for ``split`` in (validation, test) and ``level`` in (station, event), the
metrics ``accuracy``, ``balanced_accuracy``, ``macro_f1`` and ``n`` (recordings or events
evaluated); with ``split="train"``: ``n_train_events`` / ``n_train_recordings`` (levels
event / station) and, with ``level="run"``, ``epochs_trained``, ``best_epoch``,
``train_seconds``. The model of a trial has one member, so its best member is its
ensemble.

Resources. The trial itself only coordinates (its training worker is a Ray Train actor
in a placement group of its own, its evaluation runs in Ray Data tasks and actors), so it
asks Tune for no CPU, only a token of memory (:data:`TRIAL_RESOURCES`; Tune refuses an
empty request, and any CPU share would break the CPU arithmetic below). A
trial needs, at its peak, its training worker (``cpus_per_trial`` CPUs,
``gpus_per_trial`` GPUs) plus one CPU for Ray Data's read tasks, or two CPUs while it
evaluates (a read task and a predictor actor). ``max_concurrent_trials=None`` runs as
many trials at once as fit those peaks side by side (:func:`auto_concurrency`: on a
2-CPU machine, one), because trials whose training workers hold the CPUs that each
other's Ray Data tasks wait for would deadlock.

Scheduler: none (Tune's FIFO). Early stopping of "hopeless" trials (ASHA, median
stopping, PBT) is not sound here: (1) trials report once, at the end, and their epochs are
not comparable — an epoch at fraction 0.01 is a few mini-batches, at 1.0 hundreds — so a
rung comparison at equal "time" would compare different amounts of training rather than
promise; (2) the sweep is a measurement, not a search: the trials a scheduler would stop
(small fractions, from scratch) are exactly the low end of the learning curve the sweep
exists to measure, and stopping them would bias the curve; (3) every trial already stops
itself early when its validation loss stops improving (``patience``), which is where
compute is saved without biasing anything.

Resume and failures: if ``{out_dir}/tune/sweep`` holds an experiment, :func:`run_sweep`
restores it (``Tuner.restore(resume_unfinished=True, resume_errored=False,
restart_errored=retry_failed)``): finished trials are not run again, trials that were
running when the driver died start over (in a fresh ``attempt-N`` folder, or, if they had
already written ``metrics.json``, just report it again), and errored trials stay errored
(their errors are usually deterministic: bad data or configuration) unless
``retry_failed``. Trials are not retried by Tune (``max_failures=0``); a training worker
that dies is restarted by Ray Train from its checkpoint (``TrainConfig.max_failures``).
A failed trial is listed in ``failures.csv`` and in the progress output and does not
stop the other trials.

The pieces, one module each: :mod:`.config` (:class:`SweepConfig`, the trial grid,
concurrency), :mod:`.sampling` (the events of a fraction), :mod:`.trial` (one Tune
trial), :mod:`.driver` (:func:`run_sweep`), :mod:`.results` (table, failures, learning
curve), :mod:`.progress` (the driver's Tune callback) and :mod:`.cli` (``raydisc sweep``).
Everything public is importable from ``raydisc.experiments.sweep``.
"""
from .cli import add_sweep_arguments, run_sweep_command, sweep_config_from_args
from .config import DEFAULT_FRACTIONS, MODES, SweepConfig, auto_concurrency, trial_name
from .driver import run_sweep
from .results import RESULT_COLUMNS, format_curve, plot_learning_curve, read_failures, tidy_results
from .sampling import sample_fraction_events
from .trial import sweep_trial, trial_train_config


def __getattr__(name: str):
    # Sweeps started before this package was split pickled their progress callback
    # (in tune/sweep/tuner.pkl) as ``raydisc.experiments.sweep._SweepProgress``; this
    # name keeps them resumable without importing Ray Tune on every import.
    if name == "_SweepProgress":
        from .progress import SweepProgress

        return SweepProgress
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["DEFAULT_FRACTIONS", "MODES", "RESULT_COLUMNS", "SweepConfig", "add_sweep_arguments", "auto_concurrency",
           "format_curve", "plot_learning_curve", "read_failures", "run_sweep", "run_sweep_command",
           "sample_fraction_events", "sweep_config_from_args", "sweep_trial", "tidy_results", "trial_name",
           "trial_train_config"]

