"""Helpers of the serving tests: a tiny randomly initialised bundle, and waiting for a
Serve application to answer its readiness probe."""
from __future__ import annotations

import time

import requests
import torch

from raydisc.config import PreprocessConfig
from raydisc.ensemble import save_bundle
from raydisc.models import build_model, input_shape_of

ARCH = "spectrogram_cnn"
HPARAMS = {"channels": (4, 8), "dense_units": 8}
N_MEMBERS = 3


def make_tiny_bundle(uri: str) -> str:
    """A 3-member spectrogram_cnn bundle of untrained (seeded) members at ``uri``."""
    config = PreprocessConfig()
    shape = input_shape_of(ARCH, config)
    states, metrics = [], []
    for seed in range(N_MEMBERS):
        torch.manual_seed(seed)
        states.append(build_model(ARCH, shape, **HPARAMS).state_dict())
        metrics.append({"seed": seed, "validation_loss": 1.0 - 0.1 * seed, "validation_accuracy": 0.5})
    save_bundle(uri, architecture=ARCH, hparams=HPARAMS, input_shape=shape, preprocess_config=config,
                member_state_dicts=states, member_metrics=metrics)
    return uri


def wait_until_ready(*urls: str, timeout_s: float = 60.0) -> None:
    """Block until ``GET {url}/readyz`` answers 200 for every url (AssertionError after ``timeout_s``)."""
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        try:
            if all(requests.get(f"{url}/readyz", timeout=5).ok for url in urls):
                return
        except requests.RequestException:
            pass
        time.sleep(0.5)
    raise AssertionError(f"Serve application(s) {urls} did not become ready in {timeout_s:.0f} s")
