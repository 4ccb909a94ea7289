"""The simulated fleet's registry: where each terminal stands and who serves it.

The registry depends only on the scenario's fleet (not on the seed), so a registry imported
once stays right for every run of that scenario. :func:`write_registry` writes the CSV of
telemetry.md (Fleet registry) that ``termwatch terminals import`` loads.
"""

from __future__ import annotations

import csv
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Final, TextIO

from simulator.scenario_model import Scenario
from terminals import registry

REGISTRY_COLUMNS: Final = registry.COLUMNS

#: Approximate centres of cities a scenario may name; other cities get no coordinates.
CITY_CENTRES: Final[dict[str, tuple[float, float]]] = {
    "Moscow": (55.7558, 37.6173),
    "Saint Petersburg": (59.9343, 30.3351),
    "Kazan": (55.7961, 49.1064),
    "Nizhny Novgorod": (56.2965, 43.9361),
    "Samara": (53.1959, 50.1002),
    "Yekaterinburg": (56.8389, 60.6057),
    "Chelyabinsk": (55.1644, 61.4368),
    "Novosibirsk": (55.0084, 82.9357),
    "Krasnoyarsk": (56.0153, 92.8932),
    "Vladivostok": (43.1155, 131.8855),
    "Москва": (55.7558, 37.6173),
    "Санкт-Петербург": (59.9343, 30.3351),
    "Казань": (55.7961, 49.1064),
    "Нижний Новгород": (56.2965, 43.9361),
    "Самара": (53.1959, 50.1002),
    "Екатеринбург": (56.8389, 60.6057),
    "Новосибирск": (55.0084, 82.9357),
}
STREETS: Final = (
    "Lenina",
    "Mira",
    "Sovetskaya",
    "Tsentralnaya",
    "Gagarina",
    "Pushkina",
    "Sadovaya",
    "Molodezhnaya",
    "Lesnaya",
    "Shkolnaya",
    "Novaya",
    "Pobedy",
    "Kirova",
    "Chekhova",
    "Zelenaya",
    "Naberezhnaya",
    "Vokzalnaya",
    "Oktyabrskaya",
    "Rabochaya",
    "Stroiteley",
)
PLACES: Final = (
    "supermarket",
    "shopping centre",
    "metro station",
    "railway station",
    "pharmacy",
    "post office",
    "bus terminal",
    "university",
    "hypermarket",
    "mall",
)
#: Streets and places of a city named in Cyrillic: its registry is written in Russian, as an
#: operator's registry there is.
STREETS_RU: Final = (
    "Ленина",
    "Мира",
    "Баумана",
    "Пушкина",
    "Гагарина",
    "Тверская",
    "Кирова",
    "Садовая",
    "Советская",
    "Чехова",
    "Победы",
    "Малышева",
    "Кремлёвская",
    "Профсоюзная",
    "Вайнера",
    "Декабристов",
)
PLACES_RU: Final = (
    "«Пятёрочка»",
    "«Магнит»",
    "ТЦ «Мега»",
    "вокзал",
    "аптека",
    "почта",
    "автовокзал",
    "университет",
    "гипермаркет «Лента»",
    "ТРЦ «Галерея»",
)
MODELS: Final = ("KSK-300", "KSK-300", "KSK-310", "PayPoint 5", "PayPoint 5S")


@dataclass(frozen=True, slots=True)
class Site:
    """One registry row."""

    tid: str
    name: str
    address: str
    city: str
    region: str
    lat: float | None
    lon: float | None
    model: str
    service_group: str
    utc_offset_min: int


def build_fleet(scenario: Scenario) -> list[Site]:
    """Every terminal of the scenario, in tid order; deterministic from the fleet alone."""
    rng = random.Random(f"registry:{scenario.name}:{scenario.tid_prefix}")
    tids = iter(scenario.tids())
    sites: list[Site] = []
    for region in scenario.regions:
        centre = CITY_CENTRES.get(region.city)
        for _ in range(region.terminals):
            tid = next(tids)
            russian = _cyrillic(region.city)
            street = rng.choice(STREETS_RU if russian else STREETS)
            house = rng.randint(1, 180)
            place = rng.choice(PLACES_RU if russian else PLACES)
            lat = lon = None
            if centre is not None:
                lat = round(centre[0] + rng.uniform(-0.12, 0.12), 5)
                lon = round(centre[1] + rng.uniform(-0.2, 0.2), 5)
            sites.append(
                Site(
                    tid=tid,
                    name=f"{place}, ул. {street}"
                    if russian
                    else f"{region.city}, {place} on {street}",
                    address=f"ул. {street}, д. {house}"
                    if russian
                    else f"{region.city}, {street} street {house}, {place}",
                    city=region.city,
                    region=region.name,
                    lat=lat,
                    lon=lon,
                    model=rng.choice(MODELS),
                    service_group=region.service_group,
                    utc_offset_min=region.utc_offset_min,
                )
            )
    return sites


def _cyrillic(text: str) -> bool:
    return any("\u0400" <= ch <= "\u04ff" for ch in text)


def write_registry(sites: list[Site], out: TextIO) -> None:
    """The registry CSV (header row, UTF-8 text) to ``out``."""
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(REGISTRY_COLUMNS)
    for s in sites:
        writer.writerow(
            [
                s.tid,
                s.name,
                s.address,
                s.city,
                s.region,
                "" if s.lat is None else f"{s.lat:.5f}",
                "" if s.lon is None else f"{s.lon:.5f}",
                s.model,
                s.service_group,
            ]
        )


def save_registry(sites: list[Site], path: Path) -> None:
    with path.open("w", encoding="utf-8", newline="") as out:
        write_registry(sites, out)
