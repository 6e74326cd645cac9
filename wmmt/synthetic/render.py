"""One clip in memory: its audio, and its frames drawn one by one with the mouth following the speech.

The mouth opening and lip spread follow the voice frame by frame, so the two tracks
are in sync; a forged frame's mouth is pasted back as a misregistered, colour-shifted
patch (family ``a``, ``wmmt.synthetic.forgeries``) or its eye region is swapped, blurred
and re-compressed (family ``b``, ``wmmt.synthetic.family_b``).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np

import wmmt.synthetic.family_b as B
from wmmt.synthetic.face import _background, _ellipse, _head_sprites, _random_face, _smooth_path
from wmmt.synthetic.forgeries import ARTEFACTS, Artefacts, forge_segments
from wmmt.synthetic.media import CONTROLS_PER_FRAME, FPS, MARGIN, SIZE
from wmmt.synthetic.plan import ClipPlan
from wmmt.synthetic.voice import _random_voice, _room_noise, _speech_tracks, _synthesize


@dataclass
class RenderedClip:
    frames: np.ndarray  # (T, 224, 224, 3) uint8 RGB
    audio: np.ndarray  # (S,) float32, S = T * 640
    visual_mask: np.ndarray  # (T,) bool: frames with a visual forgery
    audio_mask: np.ndarray  # (S,) bool: samples with an audio forgery
    mouth_centre: np.ndarray  # (T, 2) int: (y, x) of the mouth in each frame
    patch_half_size: tuple[int, int] = field(default=(0, 0))  # (h, w) half size of the mouth region
    eye_box: np.ndarray | None = None  # (T, 4) int: family b's band (top, bottom, left, right) in each frame


def _patch_half_size(face, mouth, head_size: tuple[int, int], strength: Artefacts) -> tuple[int, int]:
    """Half height and width of the forgery patch around the mouth centre, so that the patch and its
    shifted source stay inside the head region of the frame."""
    h_scale, h_add, w_scale, w_add = strength.patch
    my, mx, reach = int(mouth[0]), int(mouth[1]), strength.shift[1]
    return (min(int(face.mouth_h * h_scale + h_add), my - reach, head_size[0] - my - reach),
            min(int(face.mouth_w * w_scale + w_add), mx - reach, head_size[1] - mx - reach))


def _source_rng(plan: ClipPlan, stream: int) -> np.random.Generator:
    """One of the source content's generators (0 voice, 1 face, 2 motion): a fake's unedited parts are
    the same numbers as its original's."""
    return np.random.default_rng([plan.seed, 1, plan.source, stream])


def head_layout(plan: ClipPlan) -> tuple[tuple[int, int], tuple[int, int], tuple[int, int]]:
    """(head height and width, mouth centre (y, x) in the head, forgery patch half size (h, w)) of a clip,
    as its renderer lays them out, from the face's own random stream alone: no sound, scene or motion
    is drawn, so it is cheap enough to check every face of many datasets."""
    face = _random_face(_source_rng(plan, 1))
    _, _, mouth, size = _head_sprites(face)
    return size, (int(mouth[0]), int(mouth[1])), _patch_half_size(face, mouth, size, ARTEFACTS[plan.artefacts])


class _Renderer:
    """Prepares one clip (audio, per-frame mouth shapes, motion) and draws its frames one by one."""

    def __init__(self, plan: ClipPlan, forge: bool = True):
        self.plan = plan
        # Separate generators for the source content and the forgery: a fake's unedited parts
        # are the same numbers as its original's.
        voice_rng, face_rng, motion_rng = (_source_rng(plan, stream) for stream in (0, 1, 2))
        forgery_rng = np.random.default_rng([plan.seed, 3, plan.index])
        strength = ARTEFACTS[plan.artefacts]
        self._prepare_sound(voice_rng, forgery_rng, strength, forge)
        self._prepare_face(face_rng)
        self._prepare_motion(motion_rng)
        self._prepare_mouth_box(strength)

    def _prepare_sound(
        self, voice_rng: np.random.Generator, forgery_rng: np.random.Generator, strength: Artefacts, forge_clip: bool
    ) -> None:
        """The audio (forged where the plan says), the forgery masks and seams, and the per-frame mouth shape."""
        plan = self.plan
        num_frames = plan.num_frames
        voice = _random_voice(voice_rng)
        tracks = _speech_tracks(voice_rng, voice, num_frames * CONTROLS_PER_FRAME)
        speech = _synthesize(tracks, voice, voice_rng)
        noise = _room_noise(voice_rng, plan.num_samples, voice.floor)
        segments = plan.segments if forge_clip else ()
        self.artefacts, self.swaps = {}, {}
        if plan.family == "b":
            edit = B.forge_segments_b(forgery_rng, voice, tracks, speech, noise, segments, plan.modify_audio,
                                      plan.modify_video, B.ARTEFACTS_B[plan.artefacts])
            self.swaps = edit.swaps  # frame -> its segment's swap
        else:
            edit = forge_segments(forgery_rng, voice, tracks, speech + noise, segments, plan.modify_audio,
                                  plan.modify_video, strength)
            self.artefacts = edit.seams  # frame -> (dy, dx, gain, grain)
        self.visual_mask = edit.visual_mask
        self.audio_mask = edit.audio_mask
        self.audio = np.clip(edit.audio, -0.99, 0.99).astype(np.float32)
        # Per-frame mouth shape: the mean of the 16 control points of the frame.
        self.opening = edit.mouth_tracks.opening.reshape(num_frames, CONTROLS_PER_FRAME).mean(1)
        self.spread = edit.mouth_tracks.spread.reshape(num_frames, CONTROLS_PER_FRAME).mean(1)

    def _prepare_face(self, face_rng: np.random.Generator) -> None:
        """The face, its scene and head sprites, and where the head sits in the frame."""
        self.face = _random_face(face_rng)
        self.scene = _background(face_rng, self.face)
        self.sprites, self.alphas, self.mouth, (self.h, self.w) = _head_sprites(self.face)
        self.head_y = int(SIZE * 0.5 - self.h * 0.52 + face_rng.uniform(-6, 6))
        self.head_x = int((SIZE - self.w) / 2 + face_rng.uniform(-8, 8))

    def _prepare_motion(self, motion_rng: np.random.Generator) -> None:
        """Camera sway (crop offset in the scene), head bob (relative to the scene) and blinks."""
        num_frames = self.plan.num_frames
        self.cam_y = MARGIN + _smooth_path(motion_rng, num_frames, MARGIN * motion_rng.uniform(0.3, 0.7))
        self.cam_x = MARGIN + _smooth_path(motion_rng, num_frames, MARGIN * motion_rng.uniform(0.3, 0.7))
        self.bob_y = _smooth_path(motion_rng, num_frames, motion_rng.uniform(1.0, 2.5))
        self.bob_x = _smooth_path(motion_rng, num_frames, motion_rng.uniform(1.0, 2.5))
        self.blink = np.zeros(num_frames, bool)
        t = int(motion_rng.uniform(0.5, 3.0) * FPS)
        while t < num_frames:
            self.blink[t : t + int(motion_rng.integers(2, 5))] = True
            t += int(motion_rng.uniform(2.0, 5.0) * FPS)

    def _prepare_mouth_box(self, strength: Artefacts) -> None:
        """Mouth drawing box and the forgery patch (half sizes), around the mouth centre."""
        f = self.face
        self.box_h = int(f.mouth_h + 6)
        self.box_w = int(f.mouth_w * 1.3 + 6)
        self.patch_h, self.patch_w = _patch_half_size(f, self.mouth, (self.h, self.w), strength)
        yy, xx = np.mgrid[-self.box_h : self.box_h + 1, -self.box_w : self.box_w + 1].astype(np.float32)
        self.yy, self.xx = yy, xx
        # Family b: the swapped eye band (above the mouth's drawing box) and each segment's donor eyes.
        self.swap_level = B.ARTEFACTS_B[self.plan.artefacts]
        self.band = B.eye_band(f, self.swap_level, (self.h, self.w), int(self.mouth[0]) - self.box_h)
        self.donors = {swap: _head_sprites(B.donor_face(f, swap))[0] for swap in set(self.swaps.values())}
        self.band_mask = B.feather_mask(self.band[1] - self.band[0], self.band[3] - self.band[2],
                                        self.swap_level.feather)

    def mouth_centre(self, t: int) -> tuple[int, int]:
        y0 = self.head_y + self.bob_y[t] - (self.cam_y[t] - MARGIN)
        x0 = self.head_x + self.bob_x[t] - (self.cam_x[t] - MARGIN)
        return int(y0 + self.mouth[0]), int(x0 + self.mouth[1])

    def frame(self, t: int) -> np.ndarray:
        """Frame ``t`` as (224, 224, 3) uint8."""
        cy, cx = int(self.cam_y[t]), int(self.cam_x[t])
        frame = self.scene[cy : cy + SIZE, cx : cx + SIZE].copy()  # (H, W, 3)
        y0 = self.head_y + self.bob_y[t] - (cy - MARGIN)
        x0 = self.head_x + self.bob_x[t] - (cx - MARGIN)
        which = int(self.blink[t])
        alpha = self.alphas[which]  # (h, w, 1)
        background = frame[y0 : y0 + self.h, x0 : x0 + self.w].astype(np.float32)  # (h, w, 3)
        region = background * (1 - alpha) + self.sprites[which] * alpha

        f = self.face
        my, mx = int(self.mouth[0]), int(self.mouth[1])
        box = region[my - self.box_h : my + self.box_h + 1, mx - self.box_w : mx + self.box_w + 1]
        opening = float(self.opening[t])
        spread = float(self.spread[t])
        half_h = 0.6 + opening * f.mouth_h
        half_w = f.mouth_w * (1 + 0.15 * spread) if spread > 0 else f.mouth_w * (1 + 0.3 * spread)
        lips = _ellipse(self.yy, self.xx, 0.0, 0.0, half_h + 2.5, half_w + 2.0)[..., None]
        box *= 1 - lips
        box += lips * f.lips
        inner = _ellipse(self.yy, self.xx, 0.0, 0.0, half_h, half_w)[..., None]
        teeth = (self.yy < -half_h * 0.45)[..., None] & (opening > 0.25)
        colour = np.where(teeth, np.float32(225.0), np.array([60.0, 25.0, 30.0], np.float32))
        box *= 1 - inner
        box += inner * colour

        if t in self.artefacts:  # forged mouth pasted back misregistered and colour-shifted
            dy, dx, gain, (grain, seed) = self.artefacts[t]
            ph, pw = self.patch_h, self.patch_w
            source = region[my - ph + dy : my + ph + dy, mx - pw + dx : mx + pw + dx] * gain
            if grain:  # the generator's texture: zero-mean, new every frame, so it flickers
                source += np.random.default_rng((seed, t)).normal(0.0, grain, (*source.shape[:2], 1))
            region[my - ph : my + ph, mx - pw : mx + pw] = source
        if t in self.swaps:
            self._swap_eyes(region, background, t, which, (y0, x0))
        frame[y0 : y0 + self.h, x0 : x0 + self.w] = np.clip(region + 0.5, 0, 255).astype(np.uint8)
        return frame

    def _swap_eyes(self, region: np.ndarray, background: np.ndarray, t: int, which: int, origin) -> None:
        """Family b in frame ``t``: the donor's eyes (jittered) through the generator's degradation, feathered in."""
        swap, level = self.swaps[t], self.swap_level
        top, bottom, left, right = self.band
        dy, dx = B.jitter(swap, t, level)
        # The re-compression works on the frame's 8-px grid: a window of whole blocks around the band.
        wy, wx = top - (origin[0] + top) % B.BLOCK, left - (origin[1] + left) % B.BLOCK
        window = region[wy : wy + -(-(bottom - wy) // B.BLOCK) * B.BLOCK,
                        wx : wx + -(-(right - wx) // B.BLOCK) * B.BLOCK].copy()
        alpha = self.alphas[which][top + dy : bottom + dy, left + dx : right + dx]
        donor = self.donors[swap][which][top + dy : bottom + dy, left + dx : right + dx]
        window[top - wy : bottom - wy, left - wx : right - wx] = (
            background[top:bottom, left:right] * (1 - alpha) + donor * alpha
        )
        band = B.degrade(window, level)[top - wy : bottom - wy, left - wx : right - wx]
        mask = self.band_mask
        region[top:bottom, left:right] = mask * band + (1 - mask) * region[top:bottom, left:right]

    def eye_box(self, t: int) -> tuple[int, int, int, int]:
        """Family b's band in frame ``t``'s coordinates: (top, bottom, left, right)."""
        cy, cx = int(self.cam_y[t]), int(self.cam_x[t])
        y0 = self.head_y + self.bob_y[t] - (cy - MARGIN)
        x0 = self.head_x + self.bob_x[t] - (cx - MARGIN)
        top, bottom, left, right = self.band
        return int(y0 + top), int(y0 + bottom), int(x0 + left), int(x0 + right)

    def frames(self) -> Iterator[np.ndarray]:
        for t in range(self.plan.num_frames):
            yield self.frame(t)


def render_clip(plan: ClipPlan, forge: bool = True) -> RenderedClip:
    """Render one clip in memory (no encoding). ``forge=False`` gives the unedited rendering of a fake."""
    renderer = _Renderer(plan, forge=forge)
    frames = np.stack(list(renderer.frames()))  # (T, H, W, 3)
    centres = np.array([renderer.mouth_centre(t) for t in range(plan.num_frames)])  # (T, 2)
    return RenderedClip(
        frames=frames,
        audio=renderer.audio,
        visual_mask=renderer.visual_mask,
        audio_mask=renderer.audio_mask,
        mouth_centre=centres,
        patch_half_size=(renderer.patch_h, renderer.patch_w),
        eye_box=np.array([renderer.eye_box(t) for t in range(plan.num_frames)]),
    )
