"""Experiments built from the training and evaluation pieces, and their reports."""
