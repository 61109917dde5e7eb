"""The leaderboard in a real headless Chromium from file://: no console errors, sorting, filtering, links.

Needs Debian's chromium (`apt-get install -y chromium`) and the `playwright` Python package; skips with the
reason when either is missing.
"""
from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

from leaderboard.ingest import ingest
from leaderboard.site import render_site

from leaderboard.synthetic import EVIL
from leaderboard.synthetic import demo_board as build_runs

CHROMIUM = Path("/usr/bin/chromium")
if not CHROMIUM.exists():
    pytest.skip(f"{CHROMIUM} is absent (apt-get install -y chromium)", allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api", reason="python package playwright is not installed")


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("browser")
    build_runs(tmp / "runs")
    (tmp / "planned.json").write_text(json.dumps(["bit-xor/fpt/default/4"]))
    url = f"sqlite:///{tmp / 'bench.sqlite'}"
    ingest(tmp / "runs", url)
    render_site(url, tmp / "leaderboard", planned=tmp / "planned.json")
    return tmp / "leaderboard"


@pytest.fixture(scope="module")
def browser():  # type: ignore[no-untyped-def]
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        yield b
        b.close()


def open_page(browser, path: Path):  # type: ignore[no-untyped-def]
    """Open a page from file:// and collect console errors, page errors and dialogs (an alert = injection)."""
    page = browser.new_page()
    problems: list[str] = []
    page.on("console", lambda m: problems.append(f"console {m.type}: {m.text}") if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    page.on("dialog", lambda d: (problems.append(f"dialog: {d.message}"), d.dismiss()))
    page.on("requestfailed", lambda r: problems.append(f"request failed: {r.url}"))
    page.goto(path.as_uri(), wait_until="load")
    return page, problems


def column_values(page, col: int) -> list[str]:  # type: ignore[no-untyped-def]
    return page.eval_on_selector_all(
        "#runs-table tbody tr", f"rows => rows.map(r => r.cells[{col}].getAttribute('data-v') ?? r.cells[{col}].textContent)")


def test_index_and_task_page_load_cleanly(site: Path, browser) -> None:  # type: ignore[no-untyped-def]
    for rel in ("index.html", "tasks/bit-xor.html", "tables.html"):
        page, problems = open_page(browser, site / rel)
        assert problems == [], (rel, problems)
        assert page.locator("nav a").count() >= 2
        page.close()


def test_header_click_sorts_rows(site: Path, browser) -> None:  # type: ignore[no-untyped-def]
    page, problems = open_page(browser, site / "tasks" / "bit-xor.html")
    header = page.locator("#runs-table thead th", has_text="accuracy").first
    col = page.locator("#runs-table thead th").all_inner_texts().index(header.inner_text())
    header.click()
    asc = [float(v) for v in column_values(page, col) if v not in ("", None)]
    assert asc == sorted(asc) and len(asc) >= 4
    assert header.get_attribute("aria-sort") == "ascending"
    header.click()
    desc = [float(v) for v in column_values(page, col) if v not in ("", None)]
    assert desc == sorted(desc, reverse=True)
    methods = page.locator("#runs-table thead th", has_text="method").first
    methods.click()
    names = page.eval_on_selector_all("#runs-table tbody tr", "rows => rows.map(r => r.cells[0].textContent.trim())")
    assert names == sorted(names, key=str.lower)
    assert problems == []


def test_filter_hides_rows(site: Path, browser) -> None:  # type: ignore[no-untyped-def]
    page, problems = open_page(browser, site / "tasks" / "bit-xor.html")
    total = page.locator("#runs-table tbody tr").count()
    page.fill("input[data-filter]", "lora r64")
    visible = page.locator("#runs-table tbody tr:visible")
    assert visible.count() == 1 < total
    assert "r64" in visible.first.inner_text()
    assert "1 of" in page.locator("#runs-table-count").inner_text()
    page.fill("input[data-filter]", "")
    assert page.locator("#runs-table tbody tr:visible").count() == total
    assert problems == []


def test_injected_method_name_shows_as_text(site: Path, browser) -> None:  # type: ignore[no-untyped-def]
    page, problems = open_page(browser, site / "tasks" / "bit-xor.html")
    assert page.get_by_text(EVIL, exact=False).count() >= 1
    assert problems == []  # in particular no alert dialog


def test_every_internal_link_resolves(site: Path, browser) -> None:  # type: ignore[no-untyped-def]
    """Crawl from the index in the browser: every link is file:// inside the site, exists, and loads cleanly."""
    seen: set[Path] = set()
    queue = [site / "index.html"]
    page, problems = open_page(browser, site / "index.html")
    while queue:
        path = queue.pop()
        if path in seen:
            continue
        seen.add(path)
        page.goto(path.as_uri(), wait_until="load")
        assert problems == [], (path, problems)
        external = page.eval_on_selector_all('a[href][rel~="external"]', "as => as.map(a => a.href)")
        assert all(urlsplit(h).scheme in ("http", "https") for h in external), (path, external)
        hrefs = page.eval_on_selector_all('a[href]:not([rel~="external"])', "as => as.map(a => a.href)")
        ids = set(page.eval_on_selector_all("[id]", "es => es.map(e => e.id)"))
        for href in hrefs:
            parts = urlsplit(href)
            assert parts.scheme == "file", f"{path}: non-local link {href}"
            target = Path(unquote(parts.path))
            assert target.is_file(), f"{path}: broken link {href}"
            assert site in target.parents, f"{path}: link leaves the site {href}"
            if parts.fragment and target == path:
                assert parts.fragment in ids, f"{path}: missing anchor {href}"
            if target.suffix == ".html":
                queue.append(target)
    assert len(seen) >= 20


def test_overview_links_each_failed_and_diverged_run(site: Path, browser) -> None:  # type: ignore[no-untyped-def]
    page, problems = open_page(browser, site / "index.html")
    names = page.eval_on_selector_all("#problems-table tbody tr", "rows => rows.map(r => r.cells[0].textContent)")
    assert names == ["bit-xor/full/default/2", "bit-xor/full/default/1"]
    page.locator("#problems-table tbody a", has_text="bit-xor/full/default/2").click()
    page.wait_for_load_state("load")
    assert page.url.endswith("runs/bit-xor__full__default__minilm-l6__2.html")
    assert "failed" in page.locator("td.st-failed").first.inner_text()
    assert problems == []
