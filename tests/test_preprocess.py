"""The one preprocessing function: shapes, physical sense of the values, errors."""
import numpy as np
import pytest

from raydisc.config import ConfigError, PreprocessConfig
from raydisc.features import cut_window_samples, preprocess

CONFIG = PreprocessConfig()


def _sine(freq_hz: float, rate: float, amplitude_counts: float = 1e6, batch: int = 2) -> np.ndarray:
    t = np.arange(cut_window_samples(rate, CONFIG)) / rate
    return np.broadcast_to(amplitude_counts * np.sin(2 * np.pi * freq_hz * t), (batch, 3, t.size)).copy()


@pytest.mark.parametrize("rate", [50.0, 100.0, 200.0])
def test_shapes_and_dtypes_for_each_region_rate(rate):
    out = preprocess(_sine(5.0, rate), rate, np.full((2, 3), 1e9), CONFIG)
    assert out["spectrogram"].shape == (2, *CONFIG.spectrogram_shape) == (2, 3, 41, 89)
    assert out["waveform"].shape == (2, *CONFIG.waveform_shape) == (2, 3, 3600)
    assert out["spectrogram"].dtype == out["waveform"].dtype == np.float32


def test_sine_keeps_its_frequency_and_is_normalised():
    out = preprocess(_sine(5.0, 200.0), 200.0, np.full((2, 3), 1e9), CONFIG)
    wave = out["waveform"][0, 0]
    freqs = np.fft.rfftfreq(wave.size, 1 / CONFIG.target_rate_hz)
    assert freqs[np.argmax(np.abs(np.fft.rfft(wave)))] == pytest.approx(5.0, abs=0.05)
    assert np.abs(out["waveform"]).max() == pytest.approx(1.0)
    spec = out["spectrogram"][0]
    assert spec.mean() == pytest.approx(0.0, abs=1e-3) and spec.std() == pytest.approx(1.0, abs=1e-3)
    # The 5 Hz row (bin spacing 0.5 Hz) carries the most power at every time.
    assert np.all(np.argmax(spec[0], axis=0) == 10)


def test_band_pass_removes_energy_outside_the_band():
    rate = 100.0
    inside = preprocess(_sine(5.0, rate), rate, np.full((2, 3), 1e9), CONFIG)
    t = np.arange(cut_window_samples(rate, CONFIG)) / rate
    mixed_counts = _sine(5.0, rate) + 1e6 * np.sin(2 * np.pi * 30.0 * t) + 1e6 * np.sin(2 * np.pi * 0.05 * t)
    mixed = preprocess(mixed_counts, rate, np.full((2, 3), 1e9), CONFIG)
    # 30 Hz is above the band and the target Nyquist; 0.05 Hz is below the band.
    assert np.abs(mixed["waveform"] - inside["waveform"]).max() < 0.02


def test_sensitivity_is_removed_before_normalisation():
    rate = 50.0
    counts = _sine(2.0, rate)
    a = preprocess(counts, rate, np.full((2, 3), 1e9), CONFIG)
    b = preprocess(counts * 10, rate, np.full((2, 3), 1e10), CONFIG)
    np.testing.assert_allclose(a["waveform"], b["waveform"], atol=1e-5)


def test_batch_rows_are_independent():
    rate = 100.0
    counts = np.random.default_rng(0).normal(size=(4, 3, cut_window_samples(rate, CONFIG))) * 1e3
    full = preprocess(counts, rate, np.full((4, 3), 1e9), CONFIG)
    single = preprocess(counts[2:3], rate, np.full((1, 3), 1e9), CONFIG)
    np.testing.assert_allclose(full["spectrogram"][2], single["spectrogram"][0], atol=1e-5)


def test_wrong_length_and_bad_sensitivity_are_clear_errors():
    with pytest.raises(ValueError, match="samples per component"):
        preprocess(np.zeros((1, 3, 100)), 100.0, np.ones((1, 3)), CONFIG)
    with pytest.raises(ValueError, match="shape"):
        preprocess(np.zeros((1, 2, 100)), 100.0, np.ones((1, 2)), CONFIG)
    counts = _sine(5.0, 100.0, batch=1)
    with pytest.raises(ValueError, match="sensitivity"):
        preprocess(counts, 100.0, np.zeros((1, 3)), CONFIG)


def test_config_validation_and_round_trip():
    with pytest.raises(ConfigError, match="Nyquist"):
        PreprocessConfig(freqmax_hz=25.0)
    with pytest.raises(ConfigError, match="window_reference"):
        PreprocessConfig(window_reference="s_arrival")
    with pytest.raises(ConfigError, match="unknown field"):
        PreprocessConfig.from_dict({"nonsense": 1})
    config = PreprocessConfig(window_length_s=60.0)
    assert PreprocessConfig.from_dict(config.to_dict()) == config
    assert config.fingerprint() != CONFIG.fingerprint()


def test_an_offset_and_a_drift_far_larger_than_the_signal_are_removed_exactly():
    # A digitizer offset 10^5 times the signal and a strong drift: the linear detrend
    # must leave the same inputs as the signal alone.
    rate = 100.0
    n = cut_window_samples(rate, CONFIG)
    t = np.arange(n) / rate
    signal_counts = 20.0 * np.sin(2 * np.pi * 4.0 * t) + np.random.default_rng(3).normal(0, 5, (2, 3, n))
    clean = preprocess(signal_counts, rate, np.full((2, 3), 1e9), CONFIG)
    offset = preprocess(signal_counts + 2e6 + 300.0 * t, rate, np.full((2, 3), 1e9), CONFIG)
    for kind in clean:
        np.testing.assert_allclose(offset[kind], clean[kind], atol=1e-4, err_msg=kind)


def test_kinds_asks_for_one_input_only_and_gives_the_same_values():
    counts = _sine(5.0, 100.0)
    both = preprocess(counts, 100.0, np.full((2, 3), 1e9), CONFIG)
    for kind in ("spectrogram", "waveform"):
        alone = preprocess(counts, 100.0, np.full((2, 3), 1e9), CONFIG, kinds=(kind,))
        assert list(alone) == [kind]
        np.testing.assert_array_equal(alone[kind], both[kind])
    with pytest.raises(ValueError, match="unknown input kinds.*'fbank'"):
        preprocess(counts, 100.0, np.full((2, 3), 1e9), CONFIG, kinds=("fbank",))
