"""Procedural synthetic people: who a person is, how a camera sees, and one rendered image of both.

A person's look depends only on ``(dataset_seed, person_id)``: build, skin, hair (short/long), shirt
colour, sleeves and pattern (plain, stripes, two-tone), trousers/shorts/skirt, shoes and an optional
backpack or shoulder bag. A camera's style depends only on ``(dataset_seed, camera)``: background scene,
colour cast, brightness, blur and how often it sees people from the back. Each image then adds scale,
position, walking pose, mirroring, background clutter, sometimes a partial occlusion, and sensor noise.
"""

from __future__ import annotations

import colorsys
from dataclasses import dataclass, replace
from functools import lru_cache

import cv2
import numpy as np

from training.defaults import SYNTHETIC_IMAGE_SIZE

SUPERSAMPLE = 2

Colour = tuple[int, int, int]
Point = tuple[float, float]


@dataclass(frozen=True)
class Appearance:
    """The identity-defining look of one person (RGB colours)."""

    skin: Colour
    hair: Colour
    long_hair: bool
    shirt: Colour
    shirt_second: Colour
    pattern: str
    stripe_period: float
    long_sleeves: bool
    lower: str
    lower_colour: Colour
    shoes: Colour
    bag: str
    bag_colour: Colour
    width: float
    height: float
    head: float


@dataclass(frozen=True)
class CameraStyle:
    """The nuisance shared by every image of one camera."""

    gains: tuple[float, float, float]
    brightness: float
    blur: float
    back_view: float
    wall: Colour
    floor: Colour
    horizon: float
    scene: tuple[tuple[float, float, float, float, Colour], ...]


def keyed_rng(*keys: int) -> np.random.Generator:
    """A generator that depends only on ``keys`` (dataset seed, ids, purpose), for draws that must repeat."""
    return np.random.default_rng([int(k) for k in keys])


def _hsv(rng: np.random.Generator, sat: tuple[float, float], val: tuple[float, float]) -> Colour:
    rgb = colorsys.hsv_to_rgb(rng.uniform(0, 1), rng.uniform(*sat), rng.uniform(*val))
    return tuple(int(round(255 * c)) for c in rgb)


def _garment_colour(rng: np.random.Generator) -> Colour:
    if rng.uniform() < 0.25:
        grey = int(rng.choice([25, 60, 110, 170, 230]) + rng.integers(-10, 11))
        return (grey, grey, grey)
    return _hsv(rng, (0.35, 1.0), (0.3, 0.95))


def _muted_colour(rng: np.random.Generator) -> Colour:
    return _hsv(rng, (0.0, 0.35), (0.25, 0.8))


@lru_cache(maxsize=4096)
def appearance(person_id: int, dataset_seed: int = 0) -> Appearance:
    """The look of ``person_id``; identical whenever the same ids are given."""
    rng = keyed_rng(dataset_seed, person_id, 1)
    skin_tones = [(241, 194, 167), (224, 172, 105), (198, 134, 66), (141, 85, 36), (92, 56, 30)]
    hair_tones = [(20, 18, 16), (60, 40, 25), (110, 75, 40), (190, 150, 90), (150, 150, 150), (120, 40, 25)]
    return Appearance(
        skin=skin_tones[rng.integers(len(skin_tones))],
        hair=hair_tones[rng.integers(len(hair_tones))],
        long_hair=bool(rng.uniform() < 0.35),
        shirt=_garment_colour(rng),
        shirt_second=_garment_colour(rng),
        pattern=str(rng.choice(["plain", "plain", "hstripes", "vstripes", "twotone"])),
        stripe_period=float(rng.uniform(0.035, 0.07)),
        long_sleeves=bool(rng.uniform() < 0.5),
        lower=str(rng.choice(["trousers", "trousers", "shorts", "skirt"])),
        lower_colour=_garment_colour(rng),
        shoes=_garment_colour(rng),
        bag=str(rng.choice(["none", "none", "backpack", "shoulder"])),
        bag_colour=_garment_colour(rng),
        width=float(rng.uniform(0.8, 1.25)),
        height=float(rng.uniform(0.88, 1.0)),
        head=float(rng.uniform(0.9, 1.1)),
    )


@lru_cache(maxsize=256)
def camera_style(camera: int, dataset_seed: int = 0) -> CameraStyle:
    """The fixed style of ``camera``."""
    rng = keyed_rng(dataset_seed, camera, 2)
    scene = tuple(
        (
            float(rng.uniform(-0.2, 1.0)),
            float(rng.uniform(0.0, 0.6)),
            float(rng.uniform(0.1, 0.5)),
            float(rng.uniform(0.1, 0.5)),
            _muted_colour(rng),
        )
        for _ in range(int(rng.integers(3, 7)))
    )
    return CameraStyle(
        gains=tuple(float(g) for g in 1.0 + rng.uniform(-0.15, 0.15, 3)),
        brightness=float(rng.uniform(0.75, 1.2)),
        blur=float(rng.uniform(0.0, 1.2)),
        back_view=float(rng.uniform(0.1, 0.9)),
        wall=_muted_colour(rng),
        floor=_muted_colour(rng),
        horizon=float(rng.uniform(0.45, 0.75)),
        scene=scene,
    )


def _background(height: int, width: int, style: CameraStyle, rng: np.random.Generator) -> np.ndarray:
    canvas = np.empty((height, width, 3), np.uint8)
    horizon = int(style.horizon * height)
    canvas[:horizon] = style.wall
    canvas[horizon:] = style.floor
    shift = rng.uniform(-0.3, 0.3)
    for x, y, w, h, colour in style.scene:
        x0, y0 = int((x + shift) * width), int(y * height)
        cv2.rectangle(canvas, (x0, y0), (x0 + int(w * width), y0 + int(h * height)), colour, -1)
    for _ in range(int(rng.integers(0, 4))):
        x0, y0 = int(rng.uniform(-0.2, 1.0) * width), int(rng.uniform(0.0, 1.0) * height)
        size = (int(rng.uniform(0.05, 0.3) * width), int(rng.uniform(0.03, 0.15) * height))
        cv2.rectangle(canvas, (x0, y0), (x0 + size[0], y0 + size[1]), _muted_colour(rng), -1)
    return canvas


def _pt(point: Point) -> tuple[int, int]:
    return (int(round(point[0])), int(round(point[1])))


def _limb(canvas: np.ndarray, start: Point, end: Point, colour: Colour, thick: float) -> None:
    cv2.line(canvas, _pt(start), _pt(end), colour, max(1, int(round(thick))), cv2.LINE_AA)


def _box(canvas: np.ndarray, corner: Point, other: Point, colour: Colour) -> None:
    cv2.rectangle(canvas, _pt(corner), _pt(other), colour, -1)


def _lerp(a: Point, b: Point, t: float) -> Point:
    return (a[0] + (b[0] - a[0]) * t, a[1] + (b[1] - a[1]) * t)


@dataclass(frozen=True)
class _Body:
    """Where one image places the parts of a person, in canvas pixels."""

    unit: float
    cx: float
    top: float
    feet_y: float
    stride: float
    head_r: float
    shoulder_y: float
    waist_y: float
    torso_w: float
    hip_w: float
    leg_t: float
    arm_t: float


def _pose(look: Appearance, height: int, width: int, rng: np.random.Generator) -> _Body:
    unit = height * look.height * rng.uniform(0.8, 0.95)
    feet_y = min(height - 1.0, height * rng.uniform(0.95, 1.0))
    top = max(0.0, feet_y - unit)
    head_r = 0.062 * unit * look.head
    return _Body(
        unit=unit,
        cx=width / 2 + rng.uniform(-0.1, 0.1) * width,
        top=top,
        feet_y=feet_y,
        stride=rng.uniform(-1.0, 1.0) * 0.11 * unit,
        head_r=head_r,
        shoulder_y=top + 2 * head_r + 0.025 * unit,
        waist_y=top + 0.53 * unit,
        torso_w=0.14 * unit * look.width,
        hip_w=0.115 * unit * look.width,
        leg_t=0.085 * unit * look.width,
        arm_t=0.065 * unit * look.width,
    )


def _draw_legs(canvas: np.ndarray, look: Appearance, body: _Body) -> None:
    u, cx, waist = body.unit, body.cx, body.waist_y
    for side in (-1, 1):
        hip = (cx + side * body.hip_w / 2, waist)
        foot = (hip[0] - side * body.stride, body.feet_y - 0.03 * u)
        if look.lower == "trousers":
            _limb(canvas, hip, foot, look.lower_colour, body.leg_t)
        else:
            _limb(canvas, hip, foot, look.skin, body.leg_t * 0.85)
        if look.lower == "shorts":
            _limb(canvas, hip, _lerp(hip, foot, 0.42), look.lower_colour, body.leg_t * 1.1)
        axes = (int(body.leg_t * 0.7), int(body.leg_t * 0.35))
        cv2.ellipse(canvas, _pt(foot), axes, 0, 0, 360, look.shoes, -1)
    if look.lower == "skirt":
        hem, w = body.feet_y - 0.23 * u, body.hip_w
        skirt = [
            (cx - w, waist - 0.02 * u),
            (cx + w, waist - 0.02 * u),
            (cx + w * 1.6, hem),
            (cx - w * 1.6, hem),
        ]
        cv2.fillPoly(canvas, [np.array(skirt, np.int32)], look.lower_colour, cv2.LINE_AA)
    else:
        _box(
            canvas,
            (cx - body.hip_w, waist - 0.02 * u),
            (cx + body.hip_w, waist + 0.07 * u),
            look.lower_colour,
        )


def _draw_torso(canvas: np.ndarray, look: Appearance, body: _Body) -> None:
    cx, top, waist = body.cx, body.shoulder_y, body.waist_y
    corners = [(cx - body.torso_w, top), (cx + body.torso_w, top), (cx + body.hip_w * 1.05, waist)]
    corners.append((cx - body.hip_w * 1.05, waist))
    mask = np.zeros(canvas.shape[:2], np.uint8)
    cv2.fillPoly(mask, [np.array(corners, np.int32)], 1)
    ys, xs = np.nonzero(mask)
    canvas[ys, xs] = look.shirt
    period = max(2.0, look.stripe_period * body.unit)
    if ys.size == 0 or look.pattern == "plain":
        return
    if look.pattern == "hstripes":
        second = (ys // period) % 2 == 1
    elif look.pattern == "vstripes":
        second = ((xs - cx) // period) % 2 == 1
    else:
        second = ys > ys.min() + 0.45 * (ys.max() - ys.min())
    canvas[ys[second], xs[second]] = look.shirt_second


def _draw_arms(canvas: np.ndarray, look: Appearance, body: _Body) -> None:
    swing = -0.8 * body.stride
    for side in (-1, 1):
        shoulder = (body.cx + side * body.torso_w * 0.92, body.shoulder_y + body.arm_t * 0.5)
        hand = (shoulder[0] + side * (0.035 * body.unit + swing), body.top + 0.56 * body.unit)
        elbow = _lerp(shoulder, hand, 0.5)
        _limb(canvas, shoulder, elbow, look.shirt, body.arm_t)
        _limb(canvas, elbow, hand, look.shirt if look.long_sleeves else look.skin, body.arm_t * 0.9)
        cv2.circle(canvas, _pt(hand), max(1, int(body.arm_t * 0.55)), look.skin, -1, cv2.LINE_AA)


def _draw_head(canvas: np.ndarray, look: Appearance, body: _Body, back: bool) -> None:
    radius, x = body.head_r, body.cx
    y = body.top + radius
    if look.long_hair and back:
        _box(canvas, (x - radius * 1.05, y), (x + radius * 1.05, y + radius * 2.3), look.hair)
    elif look.long_hair:
        for side in (-1, 1):
            _box(
                canvas, (x + side * radius * 1.1, y), (x + side * radius * 0.65, y + radius * 2.1), look.hair
            )
    r = max(1, int(round(radius)))
    cv2.circle(canvas, _pt((x, y)), r, look.hair if back else look.skin, -1, cv2.LINE_AA)
    if not back:
        cv2.ellipse(canvas, _pt((x, y)), (r, r), 0, 180, 360, look.hair, -1, cv2.LINE_AA)


def _draw_bag(canvas: np.ndarray, look: Appearance, body: _Body, back: bool, in_front: bool) -> None:
    u, cx, w = body.unit, body.cx, body.torso_w
    if look.bag == "backpack" and back == in_front:
        inset = 0.75 * w if back else -(w + 0.03 * u)
        corner = (cx - inset, body.shoulder_y + 0.03 * u)
        _box(canvas, corner, (cx + inset, body.waist_y - 0.04 * u), look.bag_colour)
    elif look.bag == "shoulder" and in_front:
        bag_at = (cx + w * 1.15, body.waist_y + 0.02 * u)
        _limb(canvas, (cx - w * 0.7, body.shoulder_y), bag_at, look.bag_colour, 0.02 * u)
        corner = (bag_at[0] - 0.06 * u, bag_at[1] - 0.05 * u)
        _box(canvas, corner, (bag_at[0] + 0.06 * u, bag_at[1] + 0.07 * u), look.bag_colour)


def _draw_person(canvas: np.ndarray, look: Appearance, rng: np.random.Generator, back: bool) -> None:
    body = _pose(look, canvas.shape[0], canvas.shape[1], rng)
    _draw_bag(canvas, look, body, back, in_front=False)
    _draw_legs(canvas, look, body)
    _draw_torso(canvas, look, body)
    _draw_arms(canvas, look, body)
    _draw_head(canvas, look, body, back)
    _draw_bag(canvas, look, body, back, in_front=True)


def _occlude(canvas: np.ndarray, style: CameraStyle, rng: np.random.Generator) -> None:
    height, width = canvas.shape[:2]
    colour = (
        style.scene[int(rng.integers(len(style.scene)))][4] if rng.uniform() < 0.5 else _muted_colour(rng)
    )
    if rng.uniform() < 0.5:
        top = int(height * (1 - rng.uniform(0.12, 0.3)))
        cv2.rectangle(canvas, (0, top), (width, height), colour, -1)
    else:
        span = int(width * rng.uniform(0.15, 0.3))
        x0 = 0 if rng.uniform() < 0.5 else width - span
        cv2.rectangle(canvas, (x0, 0), (x0 + span, height), colour, -1)


def _photometric(image: np.ndarray, style: CameraStyle, rng: np.random.Generator) -> np.ndarray:
    gain = (np.asarray(style.gains) * style.brightness * rng.uniform(0.88, 1.12)).astype(np.float32)
    out = image.astype(np.float32) * gain
    out += rng.standard_normal(out.shape, dtype=np.float32) * np.float32(rng.uniform(1.5, 4.0))
    return np.clip(out, 0, 255).astype(np.uint8)


def look_alike(person_id: int, model_id: int, dataset_seed: int = 0) -> Appearance:
    """``person_id``'s own build, skin, hair and bag in ``model_id``'s clothes (same colours and cut)."""
    own, clothes = appearance(person_id, dataset_seed), appearance(model_id, dataset_seed)
    return replace(
        own,
        shirt=clothes.shirt,
        shirt_second=clothes.shirt_second,
        pattern=clothes.pattern,
        stripe_period=clothes.stripe_period,
        long_sleeves=clothes.long_sleeves,
        lower=clothes.lower,
        lower_colour=clothes.lower_colour,
        shoes=clothes.shoes,
    )


def render_person(
    person_id: int,
    camera: int,
    seed: int,
    image_size: tuple[int, int] = SYNTHETIC_IMAGE_SIZE,
    dataset_seed: int = 0,
    look: Appearance | None = None,
) -> np.ndarray:
    """Draw ``person_id`` as seen by ``camera``; an ``(H, W, 3)`` uint8 RGB array, deterministic in its args.

    The person's look depends only on ``person_id`` and ``dataset_seed`` unless ``look`` is given (a
    look-alike); ``camera`` and ``seed`` choose the nuisance (scene, colour cast, pose, occlusion, noise).
    All ids and seeds must be non-negative.
    """
    if min(person_id, camera, seed, dataset_seed) < 0:
        raise ValueError("person_id, camera, seed and dataset_seed must be non-negative")
    height, width = image_size
    look = look or appearance(person_id, dataset_seed)
    style = camera_style(camera, dataset_seed)
    rng = keyed_rng(dataset_seed, person_id, camera, seed, 3)
    big_h, big_w = height * SUPERSAMPLE, width * SUPERSAMPLE
    canvas = _background(big_h, big_w, style, rng)
    _draw_person(canvas, look, rng, back=bool(rng.uniform() < style.back_view))
    if rng.uniform() < 0.25:
        _occlude(canvas, style, rng)
    if rng.uniform() < 0.5:
        canvas = canvas[:, ::-1]
    sigma = style.blur + rng.uniform(0.0, 0.6)
    if sigma > 0.3:
        canvas = cv2.GaussianBlur(canvas, (0, 0), sigma)
    small = cv2.resize(canvas, (width, height), interpolation=cv2.INTER_AREA)
    return _photometric(small, style, rng)


def render_junk(
    person_id: int, camera: int, seed: int, image_size: tuple[int, int], dataset_seed: int
) -> np.ndarray:
    """A bad detection: a small off-centre piece of a person image blown up to full size."""
    image = render_person(person_id, camera, seed, image_size, dataset_seed)
    height, width = image_size
    rng = keyed_rng(dataset_seed, person_id, camera, seed, 4)
    crop_h, crop_w = max(2, int(height * rng.uniform(0.2, 0.4))), max(2, int(width * rng.uniform(0.4, 0.8)))
    y0, x0 = int(rng.integers(0, height - crop_h + 1)), int(rng.integers(0, width - crop_w + 1))
    piece = image[y0 : y0 + crop_h, x0 : x0 + crop_w]
    return cv2.resize(piece, (width, height), interpolation=cv2.INTER_LINEAR)
