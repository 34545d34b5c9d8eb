"""The panel names agree on both sides: every Python panel has a component in the front
end's registry (extension/src/panels/index.js) under the same name, and no more.

The registry is read as text, in the strict form its header documents (one
`  name: Component,` line per panel): the alternative, a list the build writes next to
widget.js, would make this test depend on a fresh build. extension/tests/registry.test.js
checks that the form still lists exactly what the module exports.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from pluresdb_lab import widgets
from pluresdb_lab.widgets import PANELS, Panel

REGISTRY = Path(__file__).resolve().parents[2] / "extension" / "src" / "panels" / "index.js"
BLOCK = re.compile(r"^export const PANELS = \{\n(.*?)^\};$", re.MULTILINE | re.DOTALL)
ENTRY = re.compile(r" {2}([a-z][a-z0-9_]*): ([A-Z][A-Za-z0-9]*),")
IMPORT = re.compile(r'^import (\w+) from "\./([a-z0-9_]+)/\1\.svelte";$', re.MULTILINE)


def front_end() -> dict[str, str]:
    """The registry's entries: panel name -> component name."""
    text = REGISTRY.read_text(encoding="utf-8")
    block = BLOCK.search(text)
    assert block, f"{REGISTRY} has no `export const PANELS = {{ ... }};` block"
    entries: dict[str, str] = {}
    for line in block.group(1).splitlines():
        if not line:
            continue
        entry = ENTRY.fullmatch(line)
        assert entry, f"{REGISTRY}: {line!r} is not `  name: Component,` (see its header)"
        assert entry[1] not in entries, f"{REGISTRY} lists {entry[1]!r} twice"
        entries[entry[1]] = entry[2]
    return entries


def test_python_and_front_end_name_the_same_panels() -> None:
    assert sorted(front_end()) == sorted(PANELS)


@pytest.mark.parametrize("name", sorted(PANELS))
def test_each_panel_lives_in_its_folder_named_like_its_class(name: str) -> None:
    component = front_end()[name]
    folders = dict(IMPORT.findall(REGISTRY.read_text(encoding="utf-8")))
    assert folders.get(component) == name, f"import {component} from ./{name}/{component}.svelte"
    assert component == PANELS[name].__name__
    assert (REGISTRY.parent / name / f"{component}.svelte").is_file()


def test_every_panel_class_is_registered_under_its_trait() -> None:
    def subclasses(cls: type[Panel]) -> set[type[Panel]]:
        found = set(cls.__subclasses__())
        return found.union(*(subclasses(sub) for sub in found))

    def name(cls: type[Panel]) -> str:  # by name: a test may have reloaded a module
        return f"{cls.__module__}.{cls.__qualname__}"

    ours = {cls for cls in subclasses(Panel) if cls.__module__.startswith(widgets.__name__)}
    assert {name(cls) for cls in PANELS.values()} == {name(cls) for cls in ours}
    assert all(name(PANELS[cls.panel.default_value]) == name(cls) for cls in ours)
