"""The leaderboard in a real headless Chromium from file://: no console errors, sorting, filtering, links.

Needs Debian's chromium (`apt-get install -y chromium`) and the `playwright` Python package; skips with the
reason when either is missing.
"""
from __future__ import annotations

import re

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


# absolute hrefs of HTML and SVG links alike (an SVG <a>'s .href is an SVGAnimatedString, not a URL)
ABS_HREFS = "as => as.map(a => new URL(a.getAttribute('href'), document.baseURI).href)"


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
    header.click()  # a score: best first
    desc = [float(v) for v in column_values(page, col) if v not in ("", None)]
    assert desc == sorted(desc, reverse=True) and len(desc) >= 4
    assert header.get_attribute("aria-sort") == "descending"
    header.click()
    asc = [float(v) for v in column_values(page, col) if v not in ("", None)]
    assert asc == sorted(asc)
    methods = page.locator("#runs-table thead th", has_text="method").first
    methods.click()
    names = page.eval_on_selector_all("#runs-table tbody tr", "rows => rows.map(r => r.cells[1].textContent.trim())")
    assert names == sorted(names, key=str.lower)
    assert problems == []


def test_every_numeric_column_sorts_numerically_blanks_last(site: Path, browser) -> None:  # type: ignore[no-untyped-def]
    """Each numeric header: first click descending for scores (data-first=desc), else ascending; numbers in
    order by value (not as text), and blanks ('—') at the bottom in both directions."""
    page, problems = open_page(browser, site / "tasks" / "bit-xor.html")
    heads = page.locator("#runs-table thead th")
    checked = 0
    for i in range(heads.count()):
        th = heads.nth(i)
        if "num" not in (th.get_attribute("class") or ""):
            continue
        scores = th.get_attribute("data-first") == "desc"
        for click, expect in ((1, "descending" if scores else "ascending"), (2, "ascending" if scores else "descending")):
            th.click()
            assert th.get_attribute("aria-sort") == expect, (th.inner_text(), click)
            vals = column_values(page, i)
            blank = [v in ("", "—", None) for v in vals]
            assert blank == sorted(blank), (th.inner_text(), vals)  # blanks only at the end
            nums = [float(v) for v, b in zip(vals, blank) if not b]
            assert nums == sorted(nums, reverse=expect == "descending"), (th.inner_text(), nums)
        checked += 1
    assert checked >= 10  # rank, both %, score, median, interval, paper ×2, Δ, wall, memory
    assert problems == []


def test_no_delta_where_setups_differ(site: Path, browser) -> None:  # type: ignore[no-untyped-def]
    page, problems = open_page(browser, site / "tasks" / "bit-xor.html")
    heads = page.locator("#runs-table thead th").all_inner_texts()
    d, same, other = heads.index("Δ"), heads.index("paper, same setup"), heads.index("paper, other setup")
    row = page.locator("#runs-table tbody tr", has=page.locator("td.name", has_text="fpt")).first
    cells = row.locator("td")
    assert cells.nth(d).inner_text() == "—" and cells.nth(same).inner_text() == "—"
    assert "delta-" not in (cells.nth(d).get_attribute("class") or "")
    assert cells.nth(other).inner_text() == "100"
    assert "backbone minilm-l6 (paper gpt2)" in (cells.nth(other).get_attribute("title") or "")
    page.goto((site / "tasks" / "listops.html").as_uri())  # fpt on GPT-2 at the recipe's length: a Δ
    row = page.locator("#runs-table tbody tr").first
    assert row.locator("td").nth(d).inner_text() == "+0.10"  # 38.5 against Table 1's 38.4
    assert "delta-pos" in (row.locator("td").nth(d).get_attribute("class") or "")
    page.goto((site / "index.html").as_uri())
    assert "bit-memory (n_bits 20, token_dim 10)" in page.locator("h3").all_inner_texts()[0] + "".join(
        page.locator("h3").all_inner_texts())
    assert problems == []


def test_shared_ranks_where_intervals_overlap(site: Path, browser) -> None:  # type: ignore[no-untyped-def]
    page, problems = open_page(browser, site / "tasks" / "bit-memory.html")
    ranks = page.eval_on_selector_all("#runs-table tbody tr", "rows => rows.map(r => [r.cells[1].textContent.trim(), r.cells[0].textContent.trim()])")
    assert sorted(ranks) == [["fpt", "1"], ["lora", "1"]]  # 81/82 and 81.5/83.5 overlap: a shared rank 1
    assert "do not overlap" in page.locator("#runs-table thead th").first.get_attribute("title")
    page.goto((site / "tasks" / "bit-xor.html").as_uri())
    ranks = dict(page.eval_on_selector_all("#runs-table tbody tr", "rows => rows.map(r => [r.cells[1].textContent.trim() + ' ' + r.cells[2].textContent.trim(), r.cells[0].textContent.trim()])"))
    ia3 = next(v for k, v in ranks.items() if k.startswith("ia3"))  # one seed: no interval, not ranked
    assert (ranks["fpt default"], ranks["lora r64"], ranks["lora r8"], ia3) == ("1", "2", "3", "—")
    assert problems == []


def test_plots_have_ticks_and_linked_points(site: Path, browser) -> None:  # type: ignore[no-untyped-def]
    checked = 0
    for task_page in sorted((site / "tasks").glob("*.html")):
        page, problems = open_page(browser, task_page)
        for svg in page.locator("svg.plot").all():
            if svg.locator("a.point").count() == 0:
                continue
            xt, yt = svg.locator("text.xtick").all_inner_texts(), svg.locator("text.ytick").all_inner_texts()
            assert len(xt) >= 2 and len(yt) >= 2, (task_page.name, xt, yt)
            for href in svg.locator("a.point").evaluate_all(ABS_HREFS):
                parts = urlsplit(href)
                assert Path(unquote(parts.path)).is_file(), (task_page.name, href)
            checked += 1
        assert problems == []
        page.close()
    assert checked >= 6


def test_nothing_wider_than_the_viewport(site: Path, browser) -> None:  # type: ignore[no-untyped-def]
    for rel in ("index.html", "tasks/bit-xor.html", "tables.html"):
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        page.goto((site / rel).as_uri(), wait_until="load")
        page.evaluate("document.querySelectorAll('details').forEach(d => d.open = true)")
        widest = page.evaluate("""() => { let w = 0, who = '';
            for (const e of document.querySelectorAll('body *')) { const r = e.getBoundingClientRect();
              if (r.right > w) { w = r.right; who = e.tagName + '#' + e.id + '.' + e.className; } }
            return [w, who, document.documentElement.scrollWidth]; }""")
        assert widest[0] <= 1400 and widest[2] <= 1400, (rel, widest)
        page.close()


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
        hrefs = page.eval_on_selector_all('a[href]:not([rel~="external"])', ABS_HREFS)
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
    assert re.search(r"runs/bit-xor__full__default__minilm-l6__[0-9a-f]{12}__2\.html$", page.url)
    assert "failed" in page.locator("td.st-failed").first.inner_text()
    assert problems == []
