"""Every worked example in docs/ runs as written: the Python blocks of each page, in order, in one namespace.
What an example registers (forms, backbones, anatomy functions) is forgotten afterwards."""
from __future__ import annotations

import logging
import re

import pytest

from conftest import REPO
from benchmark import registry as plugins
from benchmark.backbones import anatomy, registry as backbones
from benchmark.methods.space import FORMS

PAGES = ("adding-a-method.md", "adding-a-form.md", "adding-a-task.md", "adding-a-backbone.md")
BLOCK = re.compile(r"```python\n(.*?)```", re.S)


def blocks(page: str) -> list[str]:
    return BLOCK.findall((REPO / "docs" / page).read_text())


@pytest.fixture
def restored():
    plugins.load_plugins()  # discover every form first, so the snapshot holds them
    forms, families, named = dict(FORMS), dict(anatomy.FAMILIES), dict(backbones.BACKBONES)
    logging.disable(logging.WARNING)
    yield
    logging.disable(logging.NOTSET)
    for table, before in ((FORMS, forms), (anatomy.FAMILIES, families), (backbones.BACKBONES, named)):
        table.clear()
        table.update(before)


@pytest.mark.parametrize("page", PAGES)
def test_worked_example_runs(page: str, restored: None) -> None:
    code = blocks(page)
    runnable = [c for c in code if not c.lstrip().startswith("BackboneSpec(")]  # a one-line fragment, not a program
    assert runnable, f"docs/{page} has no worked example"
    namespace: dict = {"__name__": f"docs_{page.replace('-', '_').removesuffix('.md')}"}
    exec(compile("\n".join(runnable), f"docs/{page}", "exec"), namespace)


def test_every_page_is_linked_from_the_readme_or_plugins_page() -> None:
    text = (REPO / "README.md").read_text() + (REPO / "docs" / "plugins.md").read_text()
    missing = [p for p in PAGES if p not in text]
    assert not missing, missing
