"""Each docs/flows/*.md Mermaid diagram agrees with the states the journeys declare.

A diagram names the flows it draws and the nodes that are not their states (a comment line in
the block: `%% flows: reading` and `%% outside: [*] menu linking other recorded`). A node is
a declared state by its short name (`index`) when the diagram draws one flow, else as
`<flow>_<state>` (`contact_callback`). Every declared state of those flows must be a node, and
every other node must be listed as outside: a state renamed in code or in the diagram fails here.
"""

import re
from pathlib import Path

import pytest

from conversations import journeys  # noqa: F401  (every flow declared)
from conversations.flow import FLOWS

DOCS = Path(__file__).resolve().parent.parent / "docs" / "flows"
_BLOCK = re.compile(r"```mermaid\n(.*?)```", re.S)
_ARROW = re.compile(r"^\s*(\S+)\s*-->\s*([^:\s]+)")
_ALIAS = re.compile(r'^\s*state\s+"[^"]*"\s+as\s+(\w+)')


def _diagram(path: Path) -> tuple[list[str], set[str], set[str]]:
    """(flows drawn, outside nodes declared, nodes) of a doc's Mermaid block(s)."""
    flows: list[str] = []
    outside: set[str] = set()
    nodes: set[str] = set()
    blocks = _BLOCK.findall(path.read_text(encoding="utf-8"))
    assert blocks, f"{path.name}: no Mermaid diagram"
    for block in blocks:
        in_note = False
        for line in block.splitlines():
            stripped = line.strip()
            if stripped.startswith("%% flows:"):
                flows += stripped.removeprefix("%% flows:").split()
            elif stripped.startswith("%% outside:"):
                outside |= set(stripped.removeprefix("%% outside:").split())
            elif stripped.startswith("note ") and " of " in stripped and ":" not in stripped:
                in_note = True  # a multi-line note, up to "end note"
            elif stripped == "end note":
                in_note = False
            elif not in_note and (m := _ARROW.match(line)):
                nodes |= {m.group(1), m.group(2)}
            elif not in_note and (m := _ALIAS.match(line)):
                nodes.add(m.group(1))
    return flows, outside, nodes


def _node(flows: list[str], flow: str, state: str) -> str:
    return state if len(flows) == 1 else f"{flow}_{state}"


DIAGRAMS = sorted(DOCS.glob("*.md"))


@pytest.mark.parametrize("path", DIAGRAMS, ids=[p.stem for p in DIAGRAMS])
def test_a_diagram_draws_the_declared_states_and_names_the_rest(path):
    flows, outside, nodes = _diagram(path)
    assert flows, f"{path.name}: the diagram names no flow (a `%% flows: NAME` line)"
    unknown = [f for f in flows if f not in FLOWS]
    assert not unknown, f"{path.name}: no such flow {unknown} (declared: {sorted(FLOWS)})"
    declared = {_node(flows, f, s) for f in flows for s in FLOWS[f].states}
    assert not declared - nodes, f"{path.name}: declared states missing from the diagram: {sorted(declared - nodes)}"
    stray = nodes - declared - outside
    assert not stray, f"{path.name}: nodes neither declared states nor listed `%% outside:`: {sorted(stray)}"
    assert not (outside & declared), f"{path.name}: listed outside but declared: {sorted(outside & declared)}"


def test_every_flow_has_a_diagram():
    drawn = {f for path in DIAGRAMS for f in _diagram(path)[0]}
    assert set(FLOWS) <= drawn, f"flows with no docs/flows diagram: {sorted(set(FLOWS) - drawn)}"


def test_the_check_sees_a_missing_state_and_a_stray_node(tmp_path):
    doc = tmp_path / "demo.md"
    doc.write_text(
        "```mermaid\nstateDiagram-v2\n    %% flows: track\n    %% outside: [*]\n    [*] --> strat: typo\n```\n"
    )
    flows, outside, nodes = _diagram(doc)
    assert (flows, outside, nodes) == (["track"], {"[*]"}, {"[*]", "strat"})
    with pytest.raises(AssertionError, match="missing from the diagram"):
        test_a_diagram_draws_the_declared_states_and_names_the_rest(doc)
