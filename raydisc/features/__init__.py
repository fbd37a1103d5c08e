"""Model inputs from station recordings: the one preprocessing function."""
from .preprocess import cut_window_samples, drop_components, preprocess

__all__ = ["preprocess", "cut_window_samples", "drop_components"]
