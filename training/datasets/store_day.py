"""A labelled synthetic store day: shoppers arrive through opening hours and walk the zones in order,
each zone's camera sees them in a pass of several crops (one camera track), some wear a look-alike's
clothes; every crop carries the truth (who, where, when, which track).

The people are synthetic people the synthetic recipe never trains on (ids from ``first_person_id``),
so a day replays what a store's unseen shoppers look like to a model trained elsewhere.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import numpy as np

from training.datasets.synthetic_people import Appearance, keyed_rng, look_alike, render_person

# (zone, probability a shopper goes there, (shortest, longest) seconds in view of its camera)
DEFAULT_ROUTE: tuple[tuple[str, float, tuple[float, float]], ...] = (
    ("entrance", 1.0, (15.0, 45.0)),
    ("aisles", 0.6, (60.0, 300.0)),
    ("checkout", 0.4, (60.0, 240.0)),
)
QUERY_CAMERA = 9
QUERY_SEED = 999


@dataclass(frozen=True)
class StoreDayConfig:
    """The size and shape of a day; the defaults are a small store like the one the README measures."""

    people: int = 96
    route: tuple[tuple[str, float, tuple[float, float]], ...] = DEFAULT_ROUTE
    opening_s: float = 10 * 3600.0
    crops_per_pass: int = 4
    walk_s: tuple[float, float] = (10.0, 60.0)
    look_alike_share: float = 0.25
    first_person_id: int = 5000
    dataset_seed: int = 0
    seed: int = 0
    image_size: tuple[int, int] = (128, 64)
    opens_at: datetime = datetime(2026, 11, 24, 8, 0, tzinfo=UTC)


@dataclass(frozen=True)
class DayCrop:
    """One crop the store's cameras took, with the truth: the person, their pass and the camera's track."""

    person: int
    zone: str
    camera: int
    track: str
    captured_at: datetime
    render_seed: int


@dataclass
class StoreDay:
    """The crops of a day in time order, the zones, and how each person looks."""

    config: StoreDayConfig
    crops: list[DayCrop]
    looks: dict[int, Appearance | None] = field(default_factory=dict)

    @property
    def zones(self) -> list[str]:
        """Zone names, one camera each (camera i + 1 sees zone i)."""
        return [zone for zone, _, _ in self.config.route]

    @property
    def people(self) -> list[int]:
        """Person ids of the day."""
        return sorted(self.looks)

    def image(self, crop: DayCrop) -> np.ndarray:
        """The crop's pixels (rendered on demand, the same every time)."""
        return render_person(
            crop.person,
            crop.camera,
            crop.render_seed,
            self.config.image_size,
            self.config.dataset_seed,
            self.looks.get(crop.person),
        )

    def query_image(self, person: int) -> np.ndarray:
        """A photo of ``person`` taken apart from the store's cameras (what staff would search with)."""
        return render_person(
            person,
            QUERY_CAMERA,
            QUERY_SEED,
            self.config.image_size,
            self.config.dataset_seed,
            self.looks.get(person),
        )


def _looks(
    config: StoreDayConfig, people: list[int], rng: np.random.Generator
) -> dict[int, Appearance | None]:
    """None for people in their own clothes; a look-alike's appearance for the share dressed alike."""
    looks: dict[int, Appearance | None] = dict.fromkeys(people)
    count = int(round(config.look_alike_share * len(people)))
    chosen = rng.choice(len(people), size=min(count, len(people) - 1), replace=False) if count else []
    for index in chosen:
        person = people[int(index)]
        model = people[(int(index) + 1 + int(rng.integers(len(people) - 1))) % len(people)]
        looks[person] = look_alike(person, model, config.dataset_seed)
    return looks


def _passes(config: StoreDayConfig, rng: np.random.Generator) -> list[tuple[int, float, float]]:
    """One shopper's passes: (zone index, first second, last second in view) after arriving at 0."""
    passes, now = [], 0.0
    for index, (_, chance, (shortest, longest)) in enumerate(config.route):
        if index and rng.uniform() >= chance:
            continue
        if passes:
            now += rng.uniform(*config.walk_s)
        stay = rng.uniform(shortest, longest)
        passes.append((index, now, now + stay))
        now += stay
    return passes


def make_store_day(config: StoreDayConfig | None = None) -> StoreDay:
    """Draw a day: arrivals spread over opening hours (the last an hour and a half before closing)."""
    config = config or StoreDayConfig()
    rng = keyed_rng(config.dataset_seed, config.seed, 7)
    people = [config.first_person_id + k for k in range(config.people)]
    looks = _looks(config, people, rng)
    latest_arrival = max(0.0, config.opening_s - 5400.0)
    tracks = [0] * len(config.route)
    crops: list[DayCrop] = []
    for person in people:
        arrival = rng.uniform(0.0, latest_arrival)
        for zone_index, first, last in _passes(config, rng):
            tracks[zone_index] += 1
            for k, offset in enumerate(np.linspace(first, last, config.crops_per_pass)):
                crops.append(
                    DayCrop(
                        person=person,
                        zone=config.route[zone_index][0],
                        camera=zone_index + 1,
                        track=str(tracks[zone_index]),
                        captured_at=config.opens_at + timedelta(seconds=float(arrival + offset)),
                        render_seed=tracks[zone_index] * 16 + k,
                    )
                )
    crops.sort(key=lambda c: (c.captured_at, c.camera, c.track))
    return StoreDay(config, crops, looks)
