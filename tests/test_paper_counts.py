"""He et al.'s printed parameter shares against the paper's own formula (Tables 10/11, 409.6M denominator),
recomputed for every row on its backbones: a row either matches at the precision printed, or carries the formula's
share (`formula_pct`) and a note, which the tables show beside the printed share."""
from __future__ import annotations

import re
from decimal import ROUND_HALF_UP, Decimal
from functools import cache

import pytest
import yaml

from benchmark import registry
from benchmark.backbones.anatomy import core_of
from benchmark.backbones.registry import build_model
from benchmark.methods.budget import parse_budget, with_sizes
from benchmark.methods.params import PAPER_DENOMINATORS
from benchmark.methods.space import Method, method_from_dict
from conftest import REPO
from leaderboard import tables
from leaderboard.papers import load_tables

CONFIG_METHODS = {n: method_from_dict(n, m) for n, m in
                  yaml.safe_load((REPO / "config" / "config.yaml").read_text())["methods"].items()}


@cache
def meta(backbone: str):
    return build_model(backbone, meta=True)


def shares(method: Method, backbone: str) -> tuple[int, float, float]:
    """(formula count, % of the paper's denominator, % of the backbone's own size)."""
    model = meta(backbone)
    n, own = method.formula(model), sum(p.numel() for p in core_of(model).parameters())
    return n, 100 * n / PAPER_DENOMINATORS.get(backbone, (own,))[0], 100 * n / own


def printed_as(value: float, printed: str) -> str:
    """`value` rounded half-up to the decimals the paper printed ('0.1%' → one decimal)."""
    decimals = len(printed.rstrip("%").partition(".")[2])
    return str(Decimal(repr(value)).quantize(Decimal(1).scaleb(-decimals), ROUND_HALF_UP)) + "%"


ROWS = [(t.table, r) for t in load_tables() if t.paper == "he2022" for r in t.rows
        if r.get("method") and r.get("params") and parse_budget(str(r.get("budget") or "default"))[0] != "pct"
        and not registry.get_method(r["method"], CONFIG_METHODS).train_all]


def row_method(r: dict) -> Method:
    kind, sizes = parse_budget(str(r.get("budget") or "default"))
    method = registry.get_method(r["method"], CONFIG_METHODS)
    return with_sizes(method, sizes) if kind == "sizes" else method


@pytest.mark.parametrize("table, row", ROWS, ids=[f"{t}: {r['row']}" for t, r in ROWS])
def test_a_printed_share_matches_the_formula_or_the_row_says_it_does_not(table: str, row: dict) -> None:
    for backbone in dict.fromkeys(row["backbone_per_column"]):
        n, pct, own = shares(row_method(row), backbone)
        if row.get("formula_pct") is None:
            assert printed_as(pct, row["params"]) == row["params"], (backbone, pct)
            continue
        assert printed_as(pct, row["params"]) != row["params"]  # a real mismatch, not a rounding
        assert round(pct, 2) == row["formula_pct"]
        note = row["params_note"]
        assert int(re.search(r"= ([\d,]+) parameters", note).group(1).replace(",", "")) == n
        assert f"{pct:.2f}% of 409.6M" in note
        if backbone == "mbart-large-cc25":
            assert f"{own:.2f}% of mbart-large-cc25's own 610.9M" in note


def test_exactly_the_known_mismatches_are_flagged() -> None:
    flagged = {(t, r["row"]) for t, r in ROWS if r.get("formula_pct") is not None}
    assert flagged == {("Table 4", "Prefix tuning, l=30"), ("Table 4", "Prefix tuning without gating, l=30"),
                       ("Table 4", "PA (ffn), r=30"), ("Table 4", "PA (attn), r=30"), ("Table 4", "MH PA (attn), r=30"),
                       ("Table 6", "LoRA (ffn), r=102")}


def test_table6_lora_ffn_7_2_percent_is_r120() -> None:
    lora_ffn = registry.get_method("lora-ffn")
    assert printed_as(shares(with_sizes(lora_ffn, {"r": 120}), "bart-large")[1], "7.2%") == "7.2%"
    assert printed_as(shares(with_sizes(lora_ffn, {"r": 102}), "bart-large")[1], "6.1%") == "6.1%"


def test_the_tables_show_both_shares_and_flag_the_mismatch() -> None:
    views = {v.table.id: v for v in tables.build_views([])}
    t6 = views["he2022-table6"]
    lora = next(r for r in t6.rows if r.row == "LoRA (ffn), r=102")
    assert lora.params_text() == "7.2% ⚠ formula 6.12%"
    assert next(r for r in t6.rows if r.row.startswith("Prefix tuning")).params_text() == "3.6%"
    assert any(n.startswith("⚠ LoRA (ffn), r=102: printed 7.2%, the paper's formula gives 6.12%") for n in t6.notes)
    md = tables.to_markdown(t6)
    assert "| 7.2% ⚠ formula 6.12% |" in md and "7.2% is r=120 by the same formula" in md
    assert "7.2\\% ⚠ formula 6.12\\%" in tables.to_latex(t6)
    rec = next(x for x in tables.records(t6) if x["row"] == "LoRA (ffn), r=102")
    assert (rec["params"], rec["params_formula_pct"], rec["params_mismatch"]) == ("7.2%", 6.12, True)
    t4 = views["he2022-table4"]
    assert [r.params_text() for r in t4.rows if r.params == "0.1%"] == [
        "0.1% ⚠ formula 0.54%", "0.1% ⚠ formula 0.54%", "0.1% ⚠ formula 0.36%", "0.1% ⚠ formula 0.54%",
        "0.1% ⚠ formula 0.54%"]
