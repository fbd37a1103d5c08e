"""The report document: :func:`write_report` assembles the sections of
:mod:`.tables` and the figures of :mod:`.figures` into one Markdown file."""
from __future__ import annotations

import posixpath
from itertools import product

from ... import storage
from .figures import CONFUSION_LEVELS, CONFUSION_MODEL, plot_accuracy_bars, plot_confusion_grid
from .results import (FIGURES_SUFFIX, LEVELS, REPORT_NAME, STAGES, TEST_SPLIT, Cells, class_names, load_results,
                      minority_classes, ordered)
from .tables import (MISSING, MODEL_LABELS, STAGE_DESCRIPTIONS, STAGE_LABELS, UNDEFINED, accuracy_section,
                     groups_section, headline_section, minority_section, settings_section, sweep_section)


def write_report(run_dir: str, out: str | None = None) -> str:
    """Write the Markdown report of the experiment in ``run_dir`` to ``out`` (default
    ``run_dir/report.md``) and its figures to ``<out stem>_figures/`` beside it; return
    the report's URI.

    Sections: settings (if ``experiment.json`` exists); accuracy per architecture × target
    region with columns stage × model, one table per level; minority-class recall; the
    headline check (fine-tuned ensemble vs pretrained best single member, event level, in
    the region with the rarest class); station accuracy by component set and pick source
    (if ``results/groups.parquet`` exists); confusion matrices; the fine-tuning data sweep
    (if ``sweep/results.parquet`` exists). Stages not run show as "–". Raises
    ``FileNotFoundError`` when ``run_dir`` holds no results table.
    """
    frame = load_results(run_dir)
    out = out or storage.join(run_dir, REPORT_NAME)
    stem = posixpath.splitext(posixpath.basename(out))[0]
    figures_link = f"{stem}{FIGURES_SUFFIX}"
    figures_dir = storage.join(posixpath.dirname(out), figures_link)

    cells = Cells(frame)
    archs = sorted(frame["architecture"].unique())
    targets = sorted(frame["target"].unique())
    stages = ordered(frame["stage"].unique(), STAGES)
    names = class_names(frame)
    minority = minority_classes(frame, names)

    accuracy_figures = {}
    for level in LEVELS:
        name = f"accuracy_{level}.png"
        plot_accuracy_bars(cells, archs, targets, stages, level, storage.join(figures_dir, name))
        accuracy_figures[level] = f"{figures_link}/{name}"

    lines = ["# Leave-one-region-out experiment: report", "",
             f"Rebuilt from `{frame.attrs['source']}` ({len(archs)} architecture(s), target regions "
             f"{', '.join(targets)}). Every number is measured on the target region's {TEST_SPLIT} split. "
             f"A \"{MISSING}\" marks a stage that has not been run (yet); \"{UNDEFINED}\" a metric that is undefined.",
             ""]
    lines += [f"- **{STAGE_LABELS.get(s, s)}**: {STAGE_DESCRIPTIONS.get(s, 'stage ' + s)}" for s in stages]
    lines += ["- **best single**: the ensemble member with the lowest validation loss; "
              "**ensemble**: soft vote (mean probability) of all members.", ""]
    if "event_rule" in frame.columns and frame["event_rule"].nunique() == 1:
        lines += [f"Event verdicts combine an event's station probabilities by `{frame['event_rule'].iloc[0]}`.", ""]
    lines += settings_section(run_dir)
    lines += accuracy_section(cells, archs, targets, stages, accuracy_figures)
    lines += minority_section(cells, archs, targets, stages, minority)
    lines += headline_section(cells, archs, minority)
    lines += groups_section(run_dir)

    lines += ["## Confusion matrices", "",
              f"{MODEL_LABELS[CONFUSION_MODEL].capitalize()}, rows of panels = stage, columns = target region.", ""]
    for arch, level in product(archs, CONFUSION_LEVELS):
        name = f"confusion_{arch}_{CONFUSION_MODEL}_{level}.png"
        plot_confusion_grid(cells, arch, targets, stages, CONFUSION_MODEL, level, names,
                             storage.join(figures_dir, name))
        lines += [f"![{arch}, {level} level confusion matrices]({figures_link}/{name})", ""]

    lines += sweep_section(run_dir, figures_dir, figures_link)
    storage.write_bytes_atomic(out, ("\n".join(lines).rstrip() + "\n").encode())
    return out
