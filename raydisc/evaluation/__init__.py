"""Metrics (``raydisc.evaluation.metrics``) and figures (``raydisc.evaluation.plots``,
imported on demand because it loads matplotlib)."""
from .metrics import classification_report, confusion_matrix, reliability_curve, report_table

__all__ = ["classification_report", "confusion_matrix", "reliability_curve", "report_table"]
