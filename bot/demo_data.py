"""The demo data set: a few dozen contracts in several cities, written as the distributor's CSV
files and loaded through the real importer. Deterministic for a given `today`."""

from __future__ import annotations

import csv
import random
from datetime import date, timedelta
from pathlib import Path

CITIES = ["Casablanca", "Rabat", "Fès", "Marrakech", "Tanger", "Agadir", "Oujda", "Ait Ourir"]
AGENCIES = {
    "Casablanca": [
        ("Agence Maârif", "12 rue Abou Al Waqt, Maârif", "0522 99 11 22"),
        ("Agence Hay Mohammadi", "45 boulevard Ali Yaâta", "0522 62 40 10"),
        ("Agence Sidi Maârouf", "Centre commercial Sidi Maârouf, local 8", "0522 58 77 30"),
    ],
    "Rabat": [
        ("Agence Agdal", "5 avenue Fal Ould Oumeir, Agdal", "0537 77 66 55"),
        ("Agence Yacoub El Mansour", "21 avenue Al Majd", "0537 29 14 02"),
    ],
    "Fès": [
        ("Agence Ville Nouvelle", "8 avenue Hassan II", "0535 62 11 90"),
        ("Agence Saiss", "Route d'Immouzer, km 3", "0535 61 45 77"),
    ],
    "Marrakech": [
        ("Agence Guéliz", "112 avenue Mohammed V, Guéliz", "0524 43 12 12"),
        ("Agence Daoudiate", "Boulevard Allal El Fassi", "0524 31 18 60"),
    ],
    "Tanger": [
        ("Agence Boulevard", "3 boulevard Pasteur", "0539 94 30 30"),
        ("Agence Beni Makada", "Avenue Moulay Ali Cherif", "0539 95 21 44"),
    ],
    "Agadir": [("Agence Talborjt", "Avenue du Prince Sidi Mohammed", "0528 84 12 33")],
    "Oujda": [("Agence Centre", "17 boulevard Mohammed V", "0536 68 20 20")],
    "Ait Ourir": [("Agence Ait Ourir", "Route de Ouarzazate, centre", "0524 48 00 35")],
}
# The SRM Casablanca-Settat demo (`addad demo --operator srm-cs`): the region's cities and
# agencies (EXAMPLE addresses), and the previous operator whose references each city's customers
# hold on old bills (Lydec in Casablanca and Mohammédia, the régies in El Jadida and Settat, ONEE
# around them). The personas keep their contracts, moved to the region.
SRM_CITIES = ["Casablanca", "Mohammédia", "El Jadida", "Settat", "Berrechid", "Benslimane"]
SRM_AGENCIES = {
    "Casablanca": AGENCIES["Casablanca"],
    "Mohammédia": [("Agence Mohammédia Centre", "Boulevard Hassan II", "0523 32 10 10")],
    "El Jadida": [("Agence El Jadida", "Avenue Mohammed VI", "0523 34 20 20")],
    "Settat": [("Agence Settat", "Boulevard Mohammed V", "0523 40 30 30")],
    "Berrechid": [("Agence Berrechid", "Avenue Hassan II", "0522 33 40 40")],
    "Benslimane": [("Agence Benslimane", "Avenue des FAR", "0523 29 50 50")],
}
SRM_PERSONA_CITY = {"Rabat": "Mohammédia", "Ait Ourir": "Berrechid", "Fès": "El Jadida", "Marrakech": "Settat"}
SRM_LEGACY_BY_CITY = {
    "Casablanca": "lydec",
    "Mohammédia": "lydec",
    "El Jadida": "radeej",
    "Settat": "radeec",
    "Berrechid": "onee",
    "Benslimane": "onee",
}
# Fatima's electricity contract, as printed on her last Lydec bill (the format of a Feb 2024 one).
SRM_PERSONA_LEGACY = {"1000001": "0193 017 183", "1000002": "0193 017 184"}
HOURS = "Lun-Ven 8h30-16h30"
# agencies.csv's optional Arabic columns (addresses left in Latin, as many distributors' data has them)
HOURS_AR = "من الاثنين إلى الجمعة، 8:30-16:30"
NAMES_AR = {
    "Agence Maârif": "وكالة المعاريف",
    "Agence Hay Mohammadi": "وكالة الحي المحمدي",
    "Agence Sidi Maârouf": "وكالة سيدي معروف",
    "Agence Agdal": "وكالة أكدال",
    "Agence Yacoub El Mansour": "وكالة يعقوب المنصور",
    "Agence Ville Nouvelle": "وكالة المدينة الجديدة",
    "Agence Saiss": "وكالة سايس",
    "Agence Guéliz": "وكالة جليز",
    "Agence Daoudiate": "وكالة الداوديات",
    "Agence Boulevard": "وكالة البولفار",
    "Agence Beni Makada": "وكالة بني مكادة",
    "Agence Talborjt": "وكالة تالبرجت",
    "Agence Centre": "وكالة المركز",
    "Agence Ait Ourir": "وكالة آيت أورير",
    "Agence Mohammédia Centre": "وكالة المحمدية المركز",
    "Agence El Jadida": "وكالة الجديدة",
    "Agence Settat": "وكالة سطات",
    "Agence Berrechid": "وكالة برشيد",
    "Agence Benslimane": "وكالة بنسليمان",
}
FIRST = [
    "Mohamed",
    "Fatima",
    "Ahmed",
    "Khadija",
    "Youssef",
    "Aicha",
    "Omar",
    "Salma",
    "Hassan",
    "Naima",
    "Rachid",
    "Zineb",
    "Karim",
    "Meryem",
    "Abdellah",
    "Hajar",
    "Said",
    "Imane",
]
LAST = [
    "Alaoui",
    "Bennani",
    "El Idrissi",
    "Tazi",
    "Berrada",
    "Chraibi",
    "Amrani",
    "Ouazzani",
    "Lahlou",
    "Fassi",
    "Benjelloun",
    "Skalli",
    "Ziani",
    "Bouzidi",
]

# The fixed personas the README, the console demo and the docs use.
PERSONAS = [
    # contract, service, holder, phone, lang, city, kind, digits, low income, monthly use,
    # unpaid months, estimated months
    (
        "1000001",
        "electricity",
        "Fatima Zahra Bennani",
        "+212612345678",
        "ar",
        "Casablanca",
        "postpaid",
        5,
        0,
        140,
        3,
        [1],
    ),
    ("1000002", "water", "Fatima Zahra Bennani", "+212612345678", "ar", "Casablanca", "postpaid", 5, 0, 9, 1, []),
    ("1000003", "electricity", "Youssef El Amrani", "+212661234567", "fr", "Rabat", "postpaid", 6, 0, 180, 0, []),
    ("1000004", "electricity", "Ahmed Ouali", "+212670000004", "ar", "Ait Ourir", "prepaid", 6, 1, 70, 0, []),
    ("1000005", "electricity", "Khadija Alaoui", "+212655555555", "fr", "Fès", "postpaid", 6, 0, 290, 6, [2]),
    ("1000006", "electricity", "Omar Tazi", "+212677777777", "fr", "Marrakech", "postpaid", 5, 0, 160, 0, []),
]
ROLLOVER_CONTRACT = "1000006"  # its meter shows 99,9xx: the next reading wraps past 0


def _periods(today: date, months: int) -> list[tuple[date, date]]:
    """The last `months` calendar months that ended before today, oldest first."""
    end = today.replace(day=1) - timedelta(days=1)
    out = []
    for _ in range(months):
        start = end.replace(day=1) - timedelta(days=1)
        out.append((start, end))
        end = start
    return list(reversed(out))


def _dirhams(centimes: int) -> str:
    return f"{centimes // 100}.{centimes % 100:02d}"


def write_demo_csvs(folder: Path, today: date, profile) -> dict[str, Path]:
    """Bills are priced by the profile's tariffs, so "how was this bill computed" adds up in the demo."""
    from conversations.tariff import prebill

    rng = random.Random(2020)
    folder.mkdir(parents=True, exist_ok=True)
    srm = bool(profile.legacy_operators)  # an operator that replaced others: the SRM demo
    cities, agencies = (SRM_CITIES, SRM_AGENCIES) if srm else (CITIES, AGENCIES)
    people = list(PERSONAS)
    if srm:
        people = [(*p[:5], SRM_PERSONA_CITY.get(p[5], p[5]), *p[6:]) for p in people]
    for i in range(30):
        service = "water" if i % 3 == 0 else "electricity"
        kind = "prepaid" if i % 7 == 3 and service == "electricity" else "postpaid"
        use = rng.randint(4, 25) if service == "water" else rng.randint(60, 300)
        unpaid = rng.choice([0, 0, 0, 1, 1, 2, 4])
        people.append(
            (
                str(1000100 + i),
                service,
                f"{rng.choice(FIRST)} {rng.choice(LAST)}",
                f"+2126{rng.randint(10_000_000, 99_999_999)}",
                rng.choice(["ar", "ar", "fr"]),
                cities[i % len(cities)],
                kind,
                rng.choice([5, 6]),
                int(rng.random() < 0.2),
                use,
                unpaid,
                [rng.randint(1, 8)] if rng.random() < 0.3 else [],
            )
        )
    periods = _periods(today, 8)
    contracts, bills, readings = [], [], []
    for number, service, holder, phone, lang, city, kind, digits, low, use, unpaid, estimated in people:
        index = 99_950 - use * len(periods) if number == ROLLOVER_CONTRACT else rng.randint(1_000, 40_000)
        start_index = index
        readings.append((number, periods[0][0], index, "actual"))
        last_actual = (index, periods[0][0])
        for month, (start, end) in enumerate(periods):
            units = max(0, round(use * rng.uniform(0.8, 1.2)))
            months_ago = len(periods) - month
            is_estimated = months_ago in estimated
            index_end = index + units
            readings.append((number, end, index_end, "estimated" if is_estimated else "actual"))
            if not is_estimated:
                last_actual = (index_end, end)
            if kind == "postpaid":
                tariff = profile.tariff("BT-RES" if service == "electricity" else "EAU-RES")
                amount = prebill(tariff, start, end, units).total_ttc
                paid = 0 if months_ago <= unpaid else amount
                bills.append(
                    (
                        number,
                        f"F{end:%Y%m}-{number}",
                        start,
                        end,
                        end + timedelta(days=5),
                        end + timedelta(days=25),
                        index,
                        index_end,
                        units,
                        int(is_estimated),
                        amount,
                        paid,
                    )
                )
            index = index_end
        del start_index
        contracts.append(
            (
                number,
                service,
                holder,
                phone,
                lang,
                city,
                f"{'E' if service == 'electricity' else 'W'}{number}",
                kind,
                digits,
                last_actual[0],
                last_actual[1],
                "BT-RES" if service == "electricity" else "EAU-RES",
                low,
            )
        )
    # The history holds what was really read or estimated; the contract's last index is the last actual one.
    files: dict[str, tuple[list[str], list[tuple]]] = {
        "contracts": (
            [
                "contract",
                "service",
                "holder_name",
                "phone",
                "language",
                "city",
                "meter_number",
                "meter_kind",
                "meter_digits",
                "last_index",
                "last_index_date",
                "tariff",
                "low_income",
            ],
            contracts,
        ),
        "bills": (
            [
                "contract",
                "bill_number",
                "period_start",
                "period_end",
                "issue_date",
                "due_date",
                "index_start",
                "index_end",
                "consumption",
                "estimated",
                "amount",
                "paid_amount",
            ],
            [(*b[:10], _dirhams(b[10]), _dirhams(b[11])) for b in bills],
        ),
        "readings": (["contract", "date", "index", "source"], readings),
        "agencies": (
            ["city", "name", "address", "phone", "hours", "name_ar", "hours_ar"],
            [
                (city, name, address, phone, HOURS, NAMES_AR[name], HOURS_AR)
                for city, items in agencies.items()
                for name, address, phone in items
            ],
        ),
    }
    if srm:
        files["legacy"] = (["legacy_operator", "legacy_reference", "contract"], _legacy_rows(contracts, profile))
    paths = {}
    for kind, (header, rows) in files.items():
        path = folder / f"{kind}.csv"
        with path.open("w", encoding="utf-8", newline="") as fh:
            writer = csv.writer(fh, lineterminator="\n")
            writer.writerow(header)
            writer.writerows([[v.isoformat() if isinstance(v, date) else v for v in row] for row in rows])
        paths[kind] = path
    return paths


def _legacy_rows(contracts: list[tuple], profile) -> list[tuple[str, str, str]]:
    """Each demo contract's reference at its city's previous operator, printed as its bills print
    it (Lydec's "0193 017 183"; the others' EXAMPLE formats)."""
    known = {o.code for o in profile.legacy_operators}
    rows = []
    for c in contracts:
        number, city = c[0], c[5]
        operator = SRM_LEGACY_BY_CITY.get(city, "onee")
        if operator not in known:
            continue
        if number in SRM_PERSONA_LEGACY:
            printed = SRM_PERSONA_LEGACY[number]
        elif operator == "lydec":
            digits = f"02{int(number):08d}"[-10:]
            printed = f"{digits[:4]} {digits[4:7]} {digits[7:]}"
        else:  # EXAMPLE formats: a digit per operator, then the contract
            digits = {"radeej": "7", "radeec": "8"}.get(operator, "9") + number
            printed = f"{digits[:4]} {digits[4:]}"
        rows.append((operator, printed, number))
    return rows


async def load_demo(store, profile, folder: Path, today: date) -> dict[str, str]:
    """Write the demo CSV files and import them through the real importer; returns the summaries."""
    from storage.csvio import COLUMNS, import_file

    paths = write_demo_csvs(folder, today, profile)
    summaries: dict[str, str] = {}
    for kind in ("contracts", "bills", "readings", "agencies", "legacy"):
        if kind not in paths or kind not in COLUMNS:
            continue
        result = await import_file(store, kind, paths[kind], profile)
        summaries[kind] = result.summary(paths[kind].name)
    return summaries


async def ensure_demo(database: str, profile, clock) -> None:
    """Create the demo database once (the real import path, from generated CSV files), its
    bills and readings dated from the operator's today (ADDAD_CLOCK can set it)."""
    from storage import open_store

    store = await open_store(database, clock=clock)
    try:
        async with store.snapshot() as tx:
            empty = await tx.count_contracts() == 0
        if empty:
            await load_demo(store, profile, Path(database).parent, profile.today(store.clock()))
    finally:
        await store.close()
