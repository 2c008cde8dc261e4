"""Synthetic telescope cut-outs, the one generator behind training data and eval fixtures.

Everything is numpy with an explicit ``numpy.random.Generator``; nothing reads global
random state, so a (seed, count) pair always yields the same arrays on any machine.
Images are float32 "counts": sky with a gentle gradient, Gaussian approximation of
Poisson shot noise plus read noise, and one kind of signal per class.

Also here: the manifest's robust-asinh normalisation (the training side of the one
contract the service implements in TypeScript) and the out-of-distribution sources
(synthetic unseen classes and cut-outs of real FITS files shipped with astropy/photutils).
"""

from __future__ import annotations

import glob
import os
import warnings

import numpy as np

TILE = 64
CLASSES = ["point_source", "extended_source", "streak", "hot_pixels", "empty_sky"]
SOFTENING = 3.0

_YY, _XX = np.mgrid[0:TILE, 0:TILE].astype(np.float64)


# --------------------------------------------------------------------------- normalisation
def normalise(tile: np.ndarray, softening: float = SOFTENING) -> np.ndarray:
    """robust-asinh, exactly as service/models/README.md: NaN/Inf -> median of the finite
    samples; z = (v - median) / (1.4826 * MAD) (scale 1 when MAD == 0); x = asinh(z / s).
    Median of an even count is the mean of the two middle values. Computed in float64."""
    v = np.asarray(tile, dtype=np.float64)
    finite = np.isfinite(v)
    if not finite.all():
        fill = np.median(v[finite]) if finite.any() else 0.0
        v = np.where(finite, v, fill)
    med = np.median(v)
    mad = np.median(np.abs(v - med))
    scale = 1.4826 * mad if mad > 0 else 1.0
    return np.arcsinh((v - med) / scale / softening).astype(np.float32)


def normalise_batch(x: np.ndarray) -> np.ndarray:
    return np.stack([normalise(t) for t in x]).astype(np.float32)


# --------------------------------------------------------------------------- primitives
def _loguniform(rng, lo, hi):
    return float(np.exp(rng.uniform(np.log(lo), np.log(hi))))


def _background(rng):
    """Returns (sky map in counts, read-noise sigma, sky sigma at the mean level)."""
    sky = _loguniform(rng, 50.0, 2000.0)
    grad = rng.uniform(0.0, 0.03) * sky  # total change across the tile
    ang = rng.uniform(0, 2 * np.pi)
    ramp = ((_XX - 31.5) * np.cos(ang) + (_YY - 31.5) * np.sin(ang)) / TILE
    rn = rng.uniform(2.0, 10.0)
    sky_map = sky + grad * ramp
    return sky_map, rn, float(np.sqrt(sky + rn * rn))


def _noisy(rng, sky_map, rn, signal):
    signal = np.clip(signal, 0.0, None)
    var = sky_map + signal + rn * rn
    img = sky_map + signal + rng.normal(0.0, 1.0, size=(TILE, TILE)) * np.sqrt(var)
    return img.astype(np.float32)


def _psf(rng, cx, cy, fwhm, kind=None):
    """Unit-peak PSF (Gaussian or Moffat) at a sub-pixel centre."""
    kind = kind or ("moffat" if rng.random() < 0.5 else "gauss")
    r2 = (_XX - cx) ** 2 + (_YY - cy) ** 2
    if kind == "gauss":
        s = fwhm / 2.3548
        return np.exp(-0.5 * r2 / (s * s))
    beta = rng.uniform(2.5, 4.5)
    alpha = fwhm / (2.0 * np.sqrt(2.0 ** (1.0 / beta) - 1.0))
    return (1.0 + r2 / (alpha * alpha)) ** (-beta)


def _line_dist(cx, cy, ang):
    """Signed perpendicular distance to and coordinate along a line through (cx, cy)."""
    c, s = np.cos(ang), np.sin(ang)
    along = (_XX - cx) * c + (_YY - cy) * s
    perp = -(_XX - cx) * s + (_YY - cy) * c
    return perp, along


# --------------------------------------------------------------------------- classes
def _point_source(rng, sky_map, rn, sig):
    cx, cy = 31.5 + rng.uniform(-6, 6), 31.5 + rng.uniform(-6, 6)
    fwhm = rng.uniform(1.6, 5.0)
    snr = _loguniform(rng, 4.0, 300.0)
    signal = snr * sig * _psf(rng, cx, cy, fwhm)
    if rng.random() < 0.3:  # faint neighbours
        for _ in range(rng.integers(1, 3)):
            nx, ny = rng.uniform(3, 61), rng.uniform(3, 61)
            signal += rng.uniform(0.05, 0.25) * snr * sig * _psf(rng, nx, ny, fwhm, "gauss")
    return signal


def _extended_source(rng, sky_map, rn, sig):
    cx, cy = 31.5 + rng.uniform(-6, 6), 31.5 + rng.uniform(-6, 6)
    n = rng.uniform(0.5, 2.5)
    re = rng.uniform(3.0, 12.0)
    q = rng.uniform(0.3, 1.0)
    ang = rng.uniform(0, np.pi)
    b = 2.0 * n - 1.0 / 3.0
    perp, along = _line_dist(cx, cy, ang)
    r = np.sqrt(along**2 + (perp / q) ** 2)
    r = np.maximum(r, 0.5)
    prof = np.exp(-b * ((r / re) ** (1.0 / n) - 1.0))  # 1 at r = re
    ie = _loguniform(rng, 0.6, 15.0)
    return ie * sig * prof


def _streak(rng, sky_map, rn, sig):
    cx, cy = 31.5 + rng.uniform(-20, 20), 31.5 + rng.uniform(-20, 20)
    ang = rng.uniform(0, np.pi)
    width = rng.uniform(0.6, 2.5)  # gaussian sigma across the trail
    perp, along = _line_dist(cx, cy, ang)
    amp = _loguniform(rng, 2.0, 60.0)
    # brightness varies along the trail (tumbling satellite / changing range)
    vary = 1.0 + rng.uniform(0, 0.6) * np.sin(along / rng.uniform(4, 30) + rng.uniform(0, 6.3))
    vary *= 1.0 + rng.uniform(-0.5, 0.5) * along / TILE
    return amp * sig * np.exp(-0.5 * (perp / width) ** 2) * np.clip(vary, 0.1, None)


def _hot_pixels(rng, sky_map, rn, sig):
    signal = np.zeros((TILE, TILE))
    for _ in range(rng.integers(1, 7)):
        amp = _loguniform(rng, 8.0, 500.0) * sig
        x, y = int(rng.integers(0, TILE)), int(rng.integers(0, TILE))
        if rng.random() < 0.5:
            signal[y, x] += amp
        else:  # short cosmic-ray track, 1 px wide, no PSF blur
            length = int(rng.integers(2, 9))
            a = rng.uniform(0, 2 * np.pi)
            for k in range(length):
                xi = int(round(x + k * np.cos(a)))
                yi = int(round(y + k * np.sin(a)))
                if 0 <= xi < TILE and 0 <= yi < TILE:
                    signal[yi, xi] = max(signal[yi, xi], amp * rng.uniform(0.5, 1.0))
    return signal


def _empty_sky(rng, sky_map, rn, sig):
    return np.zeros((TILE, TILE))


_MAKERS = [_point_source, _extended_source, _streak, _hot_pixels, _empty_sky]


def make_classification(seed: int, n: int):
    """n labelled cut-outs, classes cycled (balanced) then shuffled. -> (x [n,64,64] f32, y [n])."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % len(CLASSES)
    rng.shuffle(labels)
    x = np.empty((n, TILE, TILE), np.float32)
    for i, c in enumerate(labels):
        sky_map, rn, sig = _background(rng)
        x[i] = _noisy(rng, sky_map, rn, _MAKERS[c](rng, sky_map, rn, sig))
    return x, labels.astype(np.int64)


# --------------------------------------------------------------------------- detection
def make_detection(seed: int, n: int):
    """Star fields: 2..8 point sources per tile. Boxes are +-2 FWHM around the centre,
    clipped to the tile, as [x, y, w, h] (top-left, pixels)."""
    rng = np.random.default_rng(seed)
    x = np.empty((n, TILE, TILE), np.float32)
    boxes = []
    for i in range(n):
        sky_map, rn, sig = _background(rng)
        signal = np.zeros((TILE, TILE))
        bx = []
        for _ in range(int(rng.integers(2, 9))):
            cx, cy = rng.uniform(2, 62), rng.uniform(2, 62)
            fwhm = rng.uniform(1.6, 4.5)
            snr = _loguniform(rng, 4.0, 200.0)
            signal += snr * sig * _psf(rng, cx, cy, fwhm)
            x0, y0 = max(0.0, cx - 2 * fwhm), max(0.0, cy - 2 * fwhm)
            x1, y1 = min(64.0, cx + 2 * fwhm), min(64.0, cy + 2 * fwhm)
            bx.append([x0, y0, x1 - x0, y1 - y0])
        x[i] = _noisy(rng, sky_map, rn, signal)
        boxes.append(np.array(bx, np.float64))
    return x, boxes


# --------------------------------------------------------------------------- OOD
OOD_KINDS = ["spike_star", "nebula", "checkerboard", "bias_step"]


def _smooth_field(rng, scale):
    f = rng.normal(size=(TILE, TILE))
    k = np.fft.fftfreq(TILE)
    kk = np.sqrt(k[None, :] ** 2 + k[:, None] ** 2)
    g = np.real(np.fft.ifft2(np.fft.fft2(f) * np.exp(-0.5 * (kk * scale) ** 2)))
    return (g - g.min()) / (np.ptp(g) + 1e-12)


def make_ood_synthetic(seed: int, n: int):
    """Unseen classes: diffraction-spike bright star, nebula-like smooth emission,
    checkerboard/readout pattern, amplifier bias step with column stripes."""
    rng = np.random.default_rng(seed)
    x = np.empty((n, TILE, TILE), np.float32)
    kinds = []
    for i in range(n):
        kind = OOD_KINDS[i % len(OOD_KINDS)]
        sky_map, rn, sig = _background(rng)
        if kind == "spike_star":
            cx, cy = 31.5 + rng.uniform(-4, 4), 31.5 + rng.uniform(-4, 4)
            amp = _loguniform(rng, 300.0, 3000.0) * sig
            s = amp * _psf(rng, cx, cy, rng.uniform(3.0, 6.0))
            a0 = rng.uniform(0, np.pi / 2)
            for a in (a0, a0 + np.pi / 2):
                perp, along = _line_dist(cx, cy, a)
                s += 0.05 * amp * np.exp(-0.5 * (perp / 0.7) ** 2) * np.exp(-np.abs(along) / rng.uniform(8, 25))
            s = np.minimum(s, rng.uniform(0.3, 0.8) * amp)  # saturation plateau
        elif kind == "nebula":
            s = _loguniform(rng, 3.0, 40.0) * sig * _smooth_field(rng, rng.uniform(8, 20)) ** rng.uniform(1, 3)
        elif kind == "checkerboard":
            p = int(rng.integers(1, 4))
            cb = ((_XX // p + _YY // p) % 2) if rng.random() < 0.5 else ((_YY // p) % 2)
            s = _loguniform(rng, 1.0, 20.0) * sig * cb
        else:
            s = np.zeros((TILE, TILE))
            cut = int(rng.integers(12, 52))
            s[:, cut:] += _loguniform(rng, 3.0, 50.0) * sig
            cols = rng.random(TILE) < 0.15
            s[:, cols] += _loguniform(rng, 1.0, 10.0) * sig
            if rng.random() < 0.5:
                s = s.T
        x[i] = _noisy(rng, sky_map, rn, s)
        kinds.append(kind)
    return x, kinds


_ASTROPY = "/usr/lib/python3/dist-packages/astropy"
REAL_FITS = [
    (f"{_ASTROPY}/io/fits/tests/data/comp.fits", 1),
    (f"{_ASTROPY}/io/fits/tests/data/fixed-1890.fits", 0),
    (f"{_ASTROPY}/wcs/tests/data/dss.14.29.56-62.41.05.fits.gz", 0),
    (f"{_ASTROPY}/modeling/tests/data/1904-66_AZP.fits", 0),
    ("/tmp/debs/px/usr/lib/python3/dist-packages/photutils/datasets/data/fermi_counts.fits.gz", 1),
]


def make_ood_real(seed: int, per_file: int):
    """64x64 cut-outs at seeded random positions from real FITS images that ship with
    astropy / photutils (files that are missing are skipped and reported)."""
    from astropy.io import fits

    rng = np.random.default_rng(seed)
    tiles, srcs, missing = [], [], []
    for path, ext in REAL_FITS:
        if not os.path.exists(path):
            missing.append(path)
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with fits.open(path) as h:
                d = np.asarray(h[ext].data, dtype=np.float64)
        while d.ndim > 2:
            d = d[0]
        hgt, wid = d.shape
        for _ in range(per_file):
            y0 = int(rng.integers(0, hgt - TILE + 1))
            x0 = int(rng.integers(0, wid - TILE + 1))
            t = d[y0 : y0 + TILE, x0 : x0 + TILE]
            if not np.isfinite(t).any():
                continue
            tiles.append(t.astype(np.float32))
            srcs.append(f"{os.path.basename(path)}[{ext}]@{x0},{y0}")
    return np.stack(tiles), srcs, missing
