"""Model inputs from station recordings: the one preprocessing function."""
from .preprocess import preprocess, cut_window_samples

__all__ = ["preprocess", "cut_window_samples"]
