"""A plugin's own test: the harness's method contract on every tiny backbone, plus what only this form knows."""
from benchmark import registry
from benchmark.backbones.registry import build_model
from benchmark.methods.contract import check_method


def test_ia3_holds_the_petl_bench_contract() -> None:
    report = check_method("ia3")
    assert report.ok, report.format()


def test_formula_is_dk_plus_dv_per_attention_and_dff_per_ffn() -> None:
    model = build_model("tiny-t5", "base", meta=True)  # 2 + 2 layers, d_kv·heads = 32, d_ff = 64
    attention_sublayers, ffn_sublayers = 2 + 2 * 2, 2 + 2  # encoder self; decoder self + cross
    assert registry.get_method("ia3").formula(model) == attention_sublayers * (32 + 32) + ffn_sublayers * 64
