"""Full instrument response: agreement with ObsPy's remove_response, units, water level, cache."""
import io
import os
import pickle

import numpy as np
import obspy
import pytest
from obspy.core.inventory.response import Response
from obspy.signal.invsim import cosine_sac_taper, cosine_taper, invert_spectrum
from obspy.signal.util import _npts2nfft

from raydisc.features.response import (
    ResponseCache,
    has_full_response,
    inverse_response,
    response_kind,
    velocity_response,
)

OBSPY_DIR = os.path.dirname(obspy.__file__)
ACCEL_RESP = os.path.join(OBSPY_DIR, "io", "xseed", "tests", "data", "RESP.JM.NMIA0.00.HHN")  # M/S**2 input
POLYNOMIAL_XML = os.path.join(OBSPY_DIR, "core", "tests", "data", "polynomial_response.xml")
HYDROPHONE_XML = os.path.join(OBSPY_DIR, "core", "tests", "data", "hydrophone_response_PA.xml")

_CHANNEL = (
    '<Channel code="{code}" locationCode=""><Latitude>0</Latitude><Longitude>0</Longitude>'
    "<Elevation>0</Elevation><Depth>0</Depth><SampleRate>100</SampleRate>{body}</Channel>"
)
# HHZ: only <InstrumentSensitivity>; HHN: no <Response>; HHE: an empty <Response>.
STATIONXML = (
    '<?xml version="1.0" encoding="UTF-8"?><FDSNStationXML xmlns="http://www.fdsn.org/xml/station/1" '
    'schemaVersion="1.1"><Source>t</Source><Created>2020-01-01T00:00:00</Created><Network code="XX">'
    '<Station code="AAA"><Latitude>0</Latitude><Longitude>0</Longitude><Elevation>0</Elevation>'
    "<Site><Name>s</Name></Site>"
    + _CHANNEL.format(code="HHZ", body=(
        "<Response><InstrumentSensitivity><Value>1e9</Value><Frequency>1</Frequency>"
        "<InputUnits><Name>M/S</Name></InputUnits><OutputUnits><Name>COUNTS</Name></OutputUnits>"
        "</InstrumentSensitivity></Response>"))
    + _CHANNEL.format(code="HHN", body="")
    + _CHANNEL.format(code="HHE", body="<Response></Response>")
    + "</Station></Network></FDSNStationXML>"
)


@pytest.fixture(scope="module")
def rjob():
    """The three BW.RJOB EH? traces (100 Hz, 3000 samples) and their responses."""
    stream, inventory = obspy.read(), obspy.read_inventory()
    return stream, inventory, [inventory.get_response(tr.id, tr.stats.starttime) for tr in stream]


def _rel_rms(a, b):
    return np.sqrt(np.mean((a - b) ** 2)) / np.sqrt(np.mean(b**2))


def _obspy_preprocessed_spectrum(tr):
    """remove_response's time-domain steps (zero mean, 5 % SAC cosine taper) and its rfft."""
    data = tr.data.astype(np.float64)
    data -= data.mean()
    data *= cosine_taper(data.size, 0.05, sactaper=True, halfcosine=False)
    nfft = _npts2nfft(data.size)
    return np.fft.rfft(data, n=nfft), nfft


@pytest.mark.parametrize("water_level, pre_filt", [(60.0, None), (None, (0.2, 0.5, 35.0, 45.0))])
def test_deconvolution_matches_obspy_remove_response(rjob, water_level, pre_filt):
    stream, inventory, responses = rjob
    spectra, nffts = zip(*(_obspy_preprocessed_spectrum(tr) for tr in stream))
    spectra, nfft = np.stack(spectra), nffts[0]
    h = np.stack([velocity_response(r, 100.0, nfft) for r in responses])  # (3, nfft // 2 + 1)
    spectra = spectra * inverse_response(h, water_level)  # batched over the 3 channels
    if pre_filt is not None:
        spectra *= cosine_sac_taper(np.fft.rfftfreq(nfft, 0.01), flimit=pre_filt)
    # remove_response's own step on the data: |X| at Nyquist. Not a response property, but
    # without it the unfiltered water-level case differs by ~1e-3 rms (the 50 Hz bin,
    # raised by the water level); preprocess cuts that bin off anyway.
    spectra[:, -1] = np.abs(spectra[:, -1])
    ours = np.fft.irfft(spectra, n=nfft, axis=-1)[:, : stream[0].stats.npts]
    for tr, mine in zip(stream, ours):
        expected = tr.copy().remove_response(inventory=inventory, output="VEL", water_level=water_level,
                                             pre_filt=pre_filt).data
        assert _rel_rms(mine, expected) < 1e-12


def test_sensitivity_at_normalization_frequency(rjob):
    _, _, responses = rjob
    sens = responses[0].instrument_sensitivity
    assert sens.frequency == 0.02 and sens.input_units == "M/S"
    h = velocity_response(responses[0], 100.0, 10_000)  # bin 2 = 0.02 Hz
    assert h.shape == (5001,) and h.dtype == np.complex128
    assert abs(h[2]) == pytest.approx(sens.value, rel=1e-4)
    assert velocity_response(responses[0], 100.0, 10_001).shape == (5001,)  # odd n: rfft length


def test_accelerometer_response_is_converted_to_velocity():
    response = obspy.read_inventory(ACCEL_RESP)[0][0][0].response
    sens = response.instrument_sensitivity
    assert sens.input_units == "M/S**2" and sens.frequency == 0.05
    h = velocity_response(response, 100.0, 2000)  # bin 1 = 0.05 Hz
    freqs = np.fft.rfftfreq(2000, 0.01)
    # counts per (m/s**2) times d/dt = i 2 pi f (numpy's FFT sign convention).
    assert abs(h[1]) == pytest.approx(sens.value * 2 * np.pi * 0.05, rel=1e-4)
    native = response.get_evalresp_response_for_frequencies(freqs, output="DEF")
    np.testing.assert_allclose(h, native * 2j * np.pi * freqs, rtol=1e-9, atol=0)


@pytest.mark.parametrize("units, power", [("M/S**2", 1), ("M/S", 0), ("M", -1)])
def test_input_units_give_the_expected_frequency_dependence(units, power):
    """One analytic pole/zero stage: H_vel = H_native * (i 2 pi f) ** power."""
    zeros, poles, gain = [0j], [-4.4 + 4.4j, -4.4 - 4.4j, -100.0 + 0j], 1500.0
    s1 = 2j * np.pi
    a0 = 1.0 / abs(np.prod([s1 - z for z in zeros]) / np.prod([s1 - p for p in poles]))
    response = Response.from_paz(zeros, poles, gain, input_units=units, output_units="COUNTS",
                                 normalization_factor=a0)
    freqs = np.fft.rfftfreq(4000, 1 / 200.0)
    s = 2j * np.pi * freqs
    native = gain * a0 * np.prod([s - z for z in zeros], axis=0) / np.prod([s - p for p in poles], axis=0)
    h = velocity_response(response, 200.0, 4000)
    np.testing.assert_allclose(h[1:], native[1:] * s[1:] ** power, rtol=1e-9)
    np.testing.assert_allclose(np.abs(h[1:]), np.abs(native[1:]) * (2 * np.pi * freqs[1:]) ** power, rtol=1e-9)
    assert np.isfinite(h[0])


def test_water_level_matches_obspy_invert_spectrum():
    rng = np.random.default_rng(0)
    h = (rng.normal(size=(2, 3, 257)) + 1j * rng.normal(size=(2, 3, 257))) * np.logspace(-6, 0, 257)
    h[..., 0] = 0.0  # DC of a velocity response
    h[0, 1, 100] = 0.0  # a zero in the band
    original = h.copy()
    inv = inverse_response(h, 60.0)
    np.testing.assert_array_equal(h, original)  # not in place
    for idx in np.ndindex(h.shape[:-1]):
        expected = h[idx].copy()
        invert_spectrum(expected, 60.0)
        np.testing.assert_array_equal(inv[idx], expected)  # bit for bit, per row
    assert np.all(np.isfinite(inv)) and inv[0, 1, 100] == 0 and np.all(inv[..., 0] == 0)
    # Values below max|H| * 1e-3 are raised to it: |1/H| <= 1e3 / max|H|, with their phase kept.
    level = np.abs(h).max(axis=-1, keepdims=True) * 1e-3
    assert np.all(np.abs(inv) <= 1.0 / level * (1 + 1e-12))
    low = (np.abs(h) < level) & (h != 0)
    np.testing.assert_allclose(np.angle(inv[low]), np.angle(1 / h[low]), atol=1e-12)
    np.testing.assert_allclose(np.abs(inv[low]), np.broadcast_to(1 / level, h.shape)[low], rtol=1e-12)


def test_no_water_level_is_plain_inverse_with_dc_zeroed():
    h = np.array([2.0 + 0j, 1e-12j, 0.0, 4.0 - 4.0j])
    inv = inverse_response(h, None)
    np.testing.assert_array_equal(inv, [0.0, 1 / h[1], 0.0, 1 / h[3]])
    zeros = inverse_response(np.zeros((3, 5), complex), 60.0)
    assert np.all(zeros == 0)


def test_response_kinds_and_errors():
    inventory = obspy.read_inventory(io.BytesIO(STATIONXML.encode()))
    channels = {ch.code: ch for ch in inventory[0][0]}
    assert channels["HHN"].response is None  # no <Response> element
    assert response_kind(channels["HHZ"].response) == "sensitivity"
    assert response_kind(channels["HHN"].response) == "none"
    assert response_kind(channels["HHE"].response) == "none"
    assert response_kind(obspy.read_inventory()[0][0][0].response) == "full"
    assert has_full_response(obspy.read_inventory(ACCEL_RESP)[0][0][0].response)
    assert not has_full_response(channels["HHZ"].response)
    polynomial = obspy.read_inventory(POLYNOMIAL_XML)[0][0][0].response
    assert response_kind(polynomial) != "full"
    for code, text in [("HHZ", "only an overall sensitivity"), ("HHN", "no instrument response"),
                       ("HHE", "no instrument response")]:
        with pytest.raises(ValueError, match=f"XX.AAA..{code}.*{text}"):
            velocity_response(channels[code].response, 100.0, 1000, channel=f"XX.AAA..{code}")
    with pytest.raises(ValueError, match="not displacement, velocity or acceleration"):
        velocity_response(obspy.read_inventory(HYDROPHONE_XML)[0][0][0].response, 100.0, 1000)


@pytest.fixture
def counted(monkeypatch):
    """Counts the evalresp evaluations made through ObsPy."""
    calls = []
    original = Response.get_evalresp_response_for_frequencies

    def wrapper(self, *args, **kwargs):
        calls.append(args)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Response, "get_evalresp_response_for_frequencies", wrapper)
    return calls


def test_cache_evaluates_each_key_once(rjob, counted):
    stream, _, responses = rjob
    cache = ResponseCache(maxsize=2)
    key = (stream[0].id, stream[0].stats.starttime.timestamp)
    first = cache.inverse(key, responses[0], 100.0, 3000, 60.0, 500)
    for _ in range(5):
        again = cache.inverse(key, responses[0], 100.0, 3000, 60.0, 500)
    assert len(counted) == 1 and again is first and (cache.hits, cache.misses) == (5, 1)
    assert not first.flags.writeable and first.shape == (500,)
    np.testing.assert_array_equal(first, inverse_response(velocity_response(responses[0], 100.0, 3000), 60.0)[:500])
    assert len(counted) == 2
    cache.inverse(key, responses[0], 100.0, 3001, 60.0, 500)  # another length is another entry
    cache.inverse(("other", 0.0), responses[1], 100.0, 3000, 60.0, 500)  # evicts the oldest
    assert len(counted) == 4 and len(cache) == 2
    cache.inverse(key, responses[0], 100.0, 3000, 60.0, 500)
    assert len(counted) == 5


def test_cache_pickles_empty(rjob):
    cache = ResponseCache(maxsize=7)
    cache.inverse("k", rjob[2][0], 100.0, 100, 60.0)
    clone = pickle.loads(pickle.dumps(cache))
    assert clone.maxsize == 7 and len(clone) == 0 and len(cache) == 1


def test_cache_does_not_store_failures_and_names_the_key(counted):
    cache = ResponseCache()
    with pytest.raises(ValueError, match="XX.AAA..HHN"):
        cache.inverse(("XX.AAA..HHN", 0.0), None, 100.0, 1000, 60.0)
    assert len(cache) == 0 and not counted
