"""The picture: a drawn face (ellipse head, hair, eyes that blink, nose, mouth) in front of a textured wall.

Every real video is a different face (skin, hair and iris colour, head shape) and
background; the head and the camera sway slowly. The mouth itself is drawn per frame
by the renderer (``wmmt.synthetic.render``) from the voice's mouth tracks.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from wmmt.synthetic.media import FPS, MARGIN, SIZE

SKIN_TONES = np.array(
    [[255, 219, 172], [241, 194, 125], [224, 172, 140], [198, 134, 66], [141, 85, 36], [110, 70, 50]],
    dtype=np.float32,
)
HAIR_COLOURS = np.array(
    [[30, 22, 18], [70, 45, 25], [120, 85, 50], [200, 170, 110], [90, 90, 95], [150, 60, 30]],
    dtype=np.float32,
)
IRIS_COLOURS = np.array([[70, 45, 25], [40, 80, 140], [60, 110, 70], [35, 25, 20]], dtype=np.float32)


@dataclass(frozen=True)
class Face:
    skin: np.ndarray  # (3,) RGB
    hair: np.ndarray
    iris: np.ndarray
    lips: np.ndarray
    rx: float  # head half-width
    ry: float  # head half-height
    hairline: float  # fraction of ry above the centre where the hair starts
    volume: bool  # hair drawn around the head too
    eye_dx: float
    eye_r: float
    mouth_w: float  # half-width of the closed mouth
    mouth_h: float  # largest half-height of the open mouth


def _random_face(rng: np.random.Generator) -> Face:
    skin = np.clip(SKIN_TONES[int(rng.integers(len(SKIN_TONES)))] + rng.uniform(-12, 12, 3), 0, 255)
    rx = rng.uniform(36.0, 47.0)
    ry = rx * rng.uniform(1.2, 1.38)
    lips = np.clip(skin * np.array([0.78, 0.5, 0.52]) + np.array([30.0, 0.0, 0.0]), 0, 255)
    return Face(
        skin=skin.astype(np.float32),
        hair=np.clip(HAIR_COLOURS[int(rng.integers(len(HAIR_COLOURS)))] + rng.uniform(-10, 10, 3), 0, 255),
        iris=IRIS_COLOURS[int(rng.integers(len(IRIS_COLOURS)))],
        lips=lips.astype(np.float32),
        rx=rx,
        ry=ry,
        hairline=rng.uniform(0.35, 0.62),
        volume=bool(rng.random() < 0.5),
        eye_dx=rx * rng.uniform(0.34, 0.44),
        eye_r=rx * rng.uniform(0.12, 0.16),
        mouth_w=rx * rng.uniform(0.3, 0.42),
        mouth_h=ry * rng.uniform(0.12, 0.16),
    )


def _ellipse(yy, xx, cy, cx, ry, rx) -> np.ndarray:
    """Anti-aliased coverage (0..1) of an ellipse on a pixel grid."""
    d = np.sqrt(((xx - cx) / rx) ** 2 + ((yy - cy) / ry) ** 2)
    return np.clip((1 - d) * min(rx, ry) + 0.5, 0.0, 1.0)


def _over(rgb: np.ndarray, alpha: np.ndarray, colour, coverage: np.ndarray) -> None:
    """Paint ``colour`` (3,) or (h, w, 3) with ``coverage`` (h, w) over an RGBA layer, in place."""
    c = coverage[..., None]
    rgb *= 1 - c
    rgb += c * colour
    alpha *= 1 - coverage
    alpha += coverage


def _head_sprites(face: Face) -> tuple[np.ndarray, np.ndarray, np.ndarray, tuple[int, int]]:
    """RGB (h, w, 3) with eyes open and closed, alpha (h, w, 1), and the mouth centre (y, x) in the sprite."""
    pad = 10
    h = int(2 * face.ry * 1.12 + 2 * pad)
    w = int(2 * face.rx * 1.25 + 2 * pad)
    cy, cx = h / 2 + face.ry * 0.05, w / 2
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    rgb = np.zeros((h, w, 3), np.float32)
    alpha = np.zeros((h, w), np.float32)
    if face.volume:
        _over(rgb, alpha, face.hair, _ellipse(yy, xx, cy - face.ry * 0.1, cx, face.ry * 1.08, face.rx * 1.18))
    for side in (-1, 1):  # ears
        _over(
            rgb,
            alpha,
            face.skin * 0.92,
            _ellipse(yy, xx, cy, cx + side * face.rx * 0.98, face.ry * 0.2, face.rx * 0.14),
        )
    shade = 1 - 0.14 * ((xx - cx) / face.rx) ** 2 - 0.06 * ((yy - cy) / face.ry)  # rounded look
    head = _ellipse(yy, xx, cy, cx, face.ry, face.rx)
    _over(rgb, alpha, face.skin * shade[..., None], head)
    hairline = cy - face.ry * face.hairline + face.ry * 0.08 * np.cos((xx - cx) / face.rx * 2.5)
    _over(rgb, alpha, face.hair, head * np.clip(hairline - yy + 0.5, 0, 1))
    eye_y = cy - face.ry * 0.12
    nose = _ellipse(yy, xx, cy + face.ry * 0.18, cx, face.ry * 0.16, face.rx * 0.08)
    _over(rgb, alpha, face.skin * 0.85, nose * 0.6)
    for side in (-1, 1):
        ex = cx + side * face.eye_dx
        brow = _ellipse(yy, xx, eye_y - face.eye_r * 1.7, ex, face.eye_r * 0.28, face.eye_r * 1.3)
        _over(rgb, alpha, face.hair * 0.8, brow)
    open_rgb = rgb.copy()
    open_alpha = alpha.copy()
    closed_rgb = rgb.copy()
    closed_alpha = alpha.copy()
    for side in (-1, 1):
        ex = cx + side * face.eye_dx
        sclera = _ellipse(yy, xx, eye_y, ex, face.eye_r * 0.62, face.eye_r)
        _over(open_rgb, open_alpha, np.array([240.0, 238.0, 232.0]), sclera)
        _over(open_rgb, open_alpha, face.iris, _ellipse(yy, xx, eye_y, ex, face.eye_r * 0.55, face.eye_r * 0.55))
        _over(
            open_rgb,
            open_alpha,
            np.array([10.0, 10.0, 12.0]),
            _ellipse(yy, xx, eye_y, ex, face.eye_r * 0.25, face.eye_r * 0.25),
        )
        lid = _ellipse(yy, xx, eye_y, ex, face.eye_r * 0.62, face.eye_r)
        _over(closed_rgb, closed_alpha, face.skin * 0.9, lid)
        _over(closed_rgb, closed_alpha, face.hair * 0.5, _ellipse(yy, xx, eye_y + 1, ex, 1.0, face.eye_r))
    mouth = (round(cy + face.ry * 0.5), round(cx))
    sprites = np.stack([open_rgb, closed_rgb])  # (2, h, w, 3)
    alphas = np.stack([open_alpha, closed_alpha])[..., None]  # (2, h, w, 1)
    return sprites, alphas, np.array(mouth), (h, w)


def _background(rng: np.random.Generator, face: Face) -> np.ndarray:
    """Static scene (H + 2M, W + 2M, 3) uint8: textured wall, neck and shoulders."""
    n = SIZE + 2 * MARGIN
    yy, xx = np.mgrid[0:n, 0:n].astype(np.float32)
    c1, c2 = rng.uniform(40, 220, 3), rng.uniform(40, 220, 3)
    angle = rng.uniform(0, np.pi)
    ramp = ((np.cos(angle) * xx + np.sin(angle) * yy) / n)[..., None]
    ramp = (ramp - ramp.min()) / (np.ptp(ramp) + 1e-6)
    scene = c1 * (1 - ramp) + c2 * ramp
    kind = int(rng.integers(3))
    if kind == 0:  # blotchy wall: coarse noise, bilinearly enlarged
        coarse = rng.standard_normal((9, 9, 3))
        pos = np.linspace(0, 8, n)
        lo = np.minimum(np.floor(pos).astype(int), 7)
        w = (pos - lo)[:, None, None]
        rows = coarse[lo] * (1 - w) + coarse[lo + 1] * w  # (n, 9, 3)
        w = (pos - lo)[None, :, None]
        scene += rng.uniform(12, 30) * (rows[:, lo] * (1 - w) + rows[:, lo + 1] * w)
    elif kind == 1:  # wallpaper stripes
        period = rng.uniform(8, 30)
        a = rng.uniform(0, np.pi)
        scene += rng.uniform(10, 25) * np.sin(2 * np.pi * (np.cos(a) * xx + np.sin(a) * yy) / period)[..., None]
    else:  # shelves / tiles: a grid of cells of random colour
        cell = int(rng.integers(16, 40))
        colours = rng.uniform(-30, 30, (n // cell + 1, n // cell + 1, 3))
        scene += colours[(yy // cell).astype(int), (xx // cell).astype(int)]
    scene += rng.uniform(2, 6) * rng.standard_normal((n, n, 3))  # fine grain
    shirt = rng.uniform(20, 230, 3)
    cx = n / 2 + rng.uniform(-6, 6)
    neck = np.clip(face.rx * 0.45 - np.abs(xx - cx) + 0.5, 0, 1) * (yy > n * 0.55)
    scene = scene * (1 - neck[..., None]) + neck[..., None] * face.skin * 0.88
    body = _ellipse(yy, xx, n + face.ry * 0.75, cx, face.ry * 1.5, face.rx * 2.4)
    scene = scene * (1 - body[..., None]) + body[..., None] * shirt
    return np.clip(scene + 0.5, 0, 255).astype(np.uint8)


def _smooth_path(rng: np.random.Generator, num_frames: int, amplitude: float) -> np.ndarray:
    """Integer offsets (T,) of a slow random sway (two sinusoids), within +-amplitude."""
    t = np.arange(num_frames) / FPS
    path = np.zeros(num_frames)
    for _ in range(2):
        path += np.sin(2 * np.pi * rng.uniform(0.08, 0.5) * t + rng.uniform(0, 2 * np.pi)) * rng.uniform(0.3, 0.5)
    return np.rint(path * amplitude).astype(int)
