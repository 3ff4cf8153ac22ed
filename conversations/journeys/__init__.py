"""Every journey declares itself (states, entry, intents, menu item) and registers its states
on import; the tables the engine and the menu read are derived here from those declarations.

Adding a journey: a module here with its `Flow("name", states=(...), intents=..., menu=...)`,
a `State` constant per target (`flow.state("x")`, `ref("menu.main")` for another flow's), a
`JourneyData` class for what it gathers, a prompt and/or handler per declared state, its import
below, its diagram in docs/flows/ (checked by tests/test_flows_docs.py) and its catalog keys."""

from ..flow import FLOWS, State, check_states
from . import agency, bills, connection, facilities, linking, menu, prepaid, reading, remind, tracking, usage  # noqa: F401

check_states()  # every journey is loaded: a misspelt state anywhere fails here, at import

# Understood intent → the entry state of the flow it starts.
INTENT_ENTRY: dict[str, State] = {intent: flow.entry for flow in FLOWS.values() for intent in flow.intents}
# A menu button or a digression's choice (`go:<flow>`) → that flow's entry state.
GO_ENTRY: dict[str, State] = {f"go:{flow.name}": flow.entry for flow in FLOWS.values()}
# The main menu: (payload, label key), in the declared order.
MENU_ITEMS: list[tuple[str, str]] = [
    (item.payload or f"go:{name}", item.label)
    for item, name in sorted((f.menu, f.name) for f in FLOWS.values() if f.menu is not None)
]
# Entry states of the customer's requests (what the starting message said is kept on entering).
ENTRY_STATES: frozenset[State] = frozenset(flow.entry for flow in FLOWS.values() if flow.request)
# Journeys whose gathered answers are worth offering back when the customer leaves them midway.
PAUSABLE: frozenset[str] = frozenset(flow.name for flow in FLOWS.values() if flow.pausable)
