"""Journeys declare their states: a misspelt state fails when the module loads, not as a
KeyError in the middle of a customer's conversation."""

import importlib
import sys

import pytest

from conversations import flow, journeys
from conversations.flow import FLOWS, REGISTRY, Flow, MenuItem, UndeclaredState, check_states, ref


@pytest.fixture
def scratch():
    """Throwaway flows are forgotten afterwards: the real registry stays as the journeys made it."""
    flows, registry, unchecked = dict(FLOWS), dict(REGISTRY), list(flow._UNCHECKED)
    yield
    FLOWS.clear(), FLOWS.update(flows)
    REGISTRY.clear(), REGISTRY.update(registry)
    flow._UNCHECKED[:] = unchecked


def test_a_misspelt_target_fails_at_import(scratch, tmp_path, monkeypatch):
    (tmp_path / "typo_journey.py").write_text(
        "from conversations.flow import Flow, Turn\n"
        'demo = Flow("typo_demo", states=("start", "index"))\n'
        'DEMO_INDEX = demo.state("indx")  # the typo\n'
        '@demo.handle("start")\n'
        "async def on_start(t: Turn) -> str | None:\n"
        "    return DEMO_INDEX\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(UndeclaredState, match=r"declares no state 'indx'"):
        importlib.import_module("typo_journey")
    sys.modules.pop("typo_journey", None)


def test_a_handler_for_an_undeclared_state_fails_at_import(scratch):
    demo = Flow("typo_handler", states=("start",))
    with pytest.raises(UndeclaredState):

        @demo.prompt("strat")
        async def ask(t):  # pragma: no cover - never registered
            return None


def test_a_ref_to_another_flow_is_checked_once_every_flow_is_loaded(scratch):
    with pytest.raises(UndeclaredState):
        ref("menu.mian")  # the menu is loaded: checked at once
    ref("later_flow.start")  # not loaded yet: checked by check_states()
    with pytest.raises(UndeclaredState, match=r"later_flow\.start"):
        check_states()
    ref("not_yet.start")
    later = Flow("not_yet", states=("start",))
    later.prompt("start")(_noop)
    check_states()  # now declared and defined


def test_a_declared_state_nothing_defines_fails(scratch):
    Flow("half_done", states=("start", "forgotten")).prompt("start")(_noop)
    with pytest.raises(UndeclaredState, match=r"half_done\.forgotten"):
        check_states()


async def _noop(t):
    return None


def test_flows_declare_states_distinct_and_once(scratch):
    with pytest.raises(ValueError):
        Flow("dup_states", states=("a", "a"))
    with pytest.raises(ValueError):
        Flow("reading", states=("start",))


def test_every_journey_is_declared_in_one_place():
    """Intent, menu item and entry state come from each flow's declaration."""
    assert journeys.INTENT_ENTRY["reading"] == "reading.start"
    assert journeys.INTENT_ENTRY["language"] == "lang.choose"
    assert journeys.GO_ENTRY["go:link"] == "link.contract"
    assert [p for p, _ in journeys.MENU_ITEMS] == [
        "go:reading",
        "go:bills",
        "go:facilities",
        "go:prepaid",
        "go:track",
        "go:agency",
        "go:contact",
        "go:link",
        "cmd:lang",
        "go:remind",
    ]
    ranks = [f.menu.rank for f in FLOWS.values() if isinstance(f.menu, MenuItem)]
    assert len(ranks) == len(set(ranks))
    for name, state in REGISTRY.items():
        assert name in FLOWS[name.split(".")[0]].states.values()
        assert state.prompt or state.handle


def _returned_strings(expr):
    """The string literals a return statement can return (`"a.b"`, `x or "a.b"`, `"a" if c else "b"`),
    not those passed to a call (`t.tr("reading.pick_contract")`)."""
    import ast

    if isinstance(expr, ast.Constant) and isinstance(expr.value, str):
        yield expr.value
    elif isinstance(expr, ast.IfExp):
        yield from _returned_strings(expr.body)
        yield from _returned_strings(expr.orelse)
    elif isinstance(expr, ast.BoolOp):
        for value in expr.values:
            yield from _returned_strings(value)
    elif isinstance(expr, ast.Tuple):
        for value in expr.elts:
            yield from _returned_strings(value)


def test_journeys_return_declared_states_never_bare_strings():
    """A handler returning "reading.indx" as a string would skip the check at import: targets
    are State constants (Flow.state, ref), so no journey returns a state as a string literal."""
    import ast
    from pathlib import Path

    found = []
    for path in sorted(Path(journeys.__file__).parent.glob("*.py")):
        for fn in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(fn, ast.AsyncFunctionDef):
                continue
            for ret in ast.walk(fn):
                if isinstance(ret, ast.Return) and ret.value is not None:
                    found += [f"{path.name}:{ret.lineno}: {v!r}" for v in _returned_strings(ret.value) if "." in v]
    assert not found, found
