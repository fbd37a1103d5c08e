"""raydisc: earthquake vs. quarry-blast discrimination on Ray."""
__version__ = "0.1.0"
