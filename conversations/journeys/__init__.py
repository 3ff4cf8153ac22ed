"""Every journey registers its states on import. INTENT_ENTRY maps understood intents to entry states."""

from . import agency, bills, facilities, linking, menu, prepaid, reading, tracking  # noqa: F401

INTENT_ENTRY = {
    "reading": "reading.start",
    "balance": "bills.start",
    "deferral": "facilities.start",
    "prepaid": "prepaid.start",
    "track": "track.start",
    "agent": "contact.start",
    "agency": "agency.start",
    "language": "lang.choose",
    "greeting": "menu.main",
    "help": "menu.main",
}
GO_ENTRY = {f"go:{name.split('.')[0]}": name for name in INTENT_ENTRY.values()} | {"go:link": "link.contract"}
