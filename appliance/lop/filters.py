"""Zero-phase smoothing and band-pass filters in plain numpy (no scipy on the Pi)."""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view


def _pad_linear(x: np.ndarray, before: int, after: int) -> np.ndarray:
    """Point-reflect the ends so a ramp continues as a ramp instead of bending at the edge.

    Needs `before` and `after` below `x.size`.
    """
    head = 2 * x[0] - x[1 : before + 1][::-1]
    tail = 2 * x[-1] - x[-after - 1 : -1][::-1] if after else x[:0]
    return np.concatenate((head, x, tail))


def moving_average(x: np.ndarray, width: int, *, hold_ends: bool = False) -> np.ndarray:
    """Centred mean over `width` samples.

    By default ramps pass unchanged, also at the ends; `hold_ends` repeats the end values
    instead, which keeps a non-negative signal (a power, a mask) non-negative.
    """
    width = max(1, min(int(width), x.size))
    if width == 1 or x.size < 3:
        return x.astype(float, copy=True)
    before, after = width // 2, width - 1 - width // 2
    if hold_ends:
        padded = np.pad(x.astype(float), (before, after), mode="edge")
    else:
        padded = _pad_linear(x.astype(float), before, after)
    cumulative = np.concatenate(([0.0], np.cumsum(padded)))
    return (cumulative[width:] - cumulative[:-width])[: x.size] / width


def running_median(x: np.ndarray, width: int) -> np.ndarray:
    """Centred median: removes spikes shorter than half the window but keeps edges sharp."""
    width = max(1, min(int(width), x.size))
    if width == 1:
        return x.astype(float, copy=True)
    padded = np.pad(x.astype(float), (width // 2, width - 1 - width // 2), mode="edge")
    return np.median(sliding_window_view(padded, width), axis=1)


def band_pass(x: np.ndarray, rate_hz: float, low_hz: float, high_hz: float) -> np.ndarray:
    """Zero-phase FFT band-pass with raised-cosine skirts (low_hz/2..low_hz, high_hz..1.5 high_hz).

    Soft skirts avoid the ringing a brick-wall mask would put around every beat; reflecting the
    ends keeps the wrap-around of the FFT from inventing a step.
    """
    n = x.size
    if n < 4:
        return np.zeros(n)
    pad = min(n - 1, int(round(3 * rate_hz)))
    padded = np.pad(x - np.mean(x), (pad, pad), mode="reflect")
    spectrum = np.fft.rfft(padded)
    freq = np.fft.rfftfreq(padded.size, 1.0 / rate_hz)
    rise = np.clip((freq - low_hz / 2) / (low_hz / 2), 0.0, 1.0)
    fall = np.clip((1.5 * high_hz - freq) / (0.5 * high_hz), 0.0, 1.0)
    gain = np.sin(rise * np.pi / 2) ** 2 * np.sin(fall * np.pi / 2) ** 2
    return np.fft.irfft(spectrum * gain, padded.size)[pad : pad + n]
