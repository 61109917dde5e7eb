"""Plugins: entry-point discovery, the method contract, and bad plugins named by their package.

The example plugin (examples/petl-ia3) is installed for real, once per session; bad plugins are written into
tmp_path as real distributions (a module plus a `.dist-info` folder with entry_points.txt) and put on
sys.path, so importlib.metadata finds them exactly as it finds an installed package.
"""
from __future__ import annotations

import importlib
import sys
from pathlib import Path
from typing import Iterator

import pytest

from conftest import REPO, install_example_plugin
from benchmark import registry
from benchmark.errors import ConfigError
from benchmark.methods.space import FORMS

EXAMPLE = REPO / "examples" / "petl-ia3"

# A one-form plugin: a learned vector rescales the FFN's intermediate activations. Each bad plugin below is this
# template with one fault.
TEMPLATE = '''
import torch
from torch import nn
from benchmark.methods.hooks import device_of, transform_input
from benchmark.methods.space import Form, method_from_dict, names_in, register_form


class Vec(nn.Module):
    def __init__(self, n, device):
        super().__init__()
        self.v = nn.Parameter(torch.full((n - SPLIT,), FILL, device=device))
        self.bias = nn.Parameter(torch.full((SPLIT,), FILL, device=device))  # SPLIT > 0: part of the vector

    def forward(self, h):
        return h * torch.cat([self.v, self.bias])


class VecForm(Form):
    name = "FORM"
    sites = ("ffn",)

    def attach(self, ATTACH_ARGS):
        added = []
        for f in anat.ffn:
            vec = Vec(f.down.in_features, device_of(f.down.module))
            f.down.module.add_module(f"petl_vec_{tag}", vec)
            transform_input(f.down.module, vec)
            added.append(vec)
        return RETURNED

    def formula(self, model, anat, mod):
        return sum(f.down.in_features - SPLIT for f in anat.ffn) + OFFSET

    def extras(self, model, anat, mod):
        return {"biases": SPLIT * len(anat.ffn)} if SPLIT else {}


register_form(VecForm())
METHOD = method_from_dict("METHOD_NAME", {"compose": [{"form": "FORM", "site": "ffn"}]})
'''


def plugin_source(form: str, method: str, *, fill: str = "1.0", offset: int = 0,
                  attach_args: str = "model, anat, mod, tag", split: int = 0,
                  returned: str = "names_in(model, added)") -> str:
    source = TEMPLATE
    for key, value in (("METHOD_NAME", method), ("FORM", form), ("FILL", fill), ("OFFSET", str(offset)),
                       ("ATTACH_ARGS", attach_args), ("SPLIT", str(split)), ("RETURNED", returned)):
        source = source.replace(key, value)
    return source


def write_plugin(site: Path, dist: str, module: str, source: str, methods: dict[str, str],
                 version: str = "0.1.0") -> None:
    """A real (if unpacked) distribution: `module.py` plus `<dist>-<version>.dist-info`."""
    (site / f"{module}.py").write_text(source)
    info = site / f"{dist.replace('-', '_')}-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n"
                                   f"Project-URL: Homepage, https://example.org/{dist}\n")
    lines = "".join(f"{name} = {target}\n" for name, target in methods.items())
    (info / "entry_points.txt").write_text(f"[petl_bench.methods]\n{lines}")


@pytest.fixture(scope="session")
def ia3() -> None:
    """petl-ia3 installed into the running interpreter (editable, no deps, no network), once."""
    install_example_plugin()


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, ia3: None) -> Iterator[Path]:
    """A folder on sys.path for fake distributions; everything they register is forgotten afterwards."""
    folder = tmp_path / "site"
    folder.mkdir()
    forms, modules = set(FORMS), set(sys.modules)
    monkeypatch.syspath_prepend(str(folder))
    importlib.invalidate_caches()
    registry.clear_caches()
    yield folder
    monkeypatch.undo()
    for name in set(FORMS) - forms:
        del FORMS[name]
    for name in set(sys.modules) - modules:  # only the fake plugins (transformers' lazy imports must stay)
        if str(folder) in str(getattr(sys.modules[name], "__file__", None) or ""):
            sys.modules.pop(name)
    importlib.invalidate_caches()
    registry.clear_caches()


def test_ia3_is_listed_with_its_package_and_version(ia3: None) -> None:
    from benchmark.plugins import list_plugins

    text = list_plugins()
    methods, forms = text.split("forms:")[0], text.split("forms:")[1].split("tasks:")[0]
    assert any(line.split()[:4] == ["ia3", "petl-ia3", "0.1.0", "ia3"] for line in methods.splitlines())
    assert any(line.split() == ["ia3", "petl-ia3", "0.1.0"] for line in forms.splitlines())
    assert any(line.split()[:3] == ["lora", "petl-bench", "0.1.0"] for line in methods.splitlines())
    assert "bit-xor" in text.split("tasks:")[1]


def test_ia3_holds_the_contract_on_every_backbone(ia3: None) -> None:
    from benchmark.plugins import BACKBONES, check_method

    report = check_method("ia3")
    assert report.ok, report.format()
    assert [r.backbone for r in report.results] == list(BACKBONES)
    assert all(r.status == "ok" for r in report.results)
    assert report.source == "petl-ia3 0.1.0" and report.forms == {"ia3": "petl-ia3 0.1.0"}


def test_ia3_counts_keys_values_and_ffn_activations(ia3: None) -> None:
    """(IA)³'s closed form on BERT: d_k + d_v per layer plus d_ff per layer, and identity at init."""
    from benchmark.backbones.registry import build_model

    method = registry.get_method("ia3")
    model = build_model("tiny-bert", "base", init="random")
    assert method.formula(model) == 2 * (32 + 32) + 2 * 64
    assert method.identity_at_init


def test_record_provenance_names_package_version_and_homepage(ia3: None) -> None:
    prov = registry.provenance(registry.get_method("ia3"))
    assert prov["package"] == "petl-ia3" and prov["version"] == "0.1.0" and prov["plugin"] is True
    assert prov["homepage"] == "https://arxiv.org/abs/2205.05638"
    assert prov["forms"] == {"ia3": "petl-ia3 0.1.0"}
    assert registry.provenance(registry.get_method("lora"))["plugin"] is False


def test_cli_lists_and_checks(ia3: None, capsys: pytest.CaptureFixture, tmp_path: Path) -> None:
    from benchmark.cli import main

    assert main(["plugins"]) == 0
    assert "petl-ia3 0.1.0" in capsys.readouterr().out
    assert main(["plugins", "check", "ia3", "--backbone", "tiny-gpt2"]) == 0
    out = capsys.readouterr().out
    assert "tiny-gpt2     ok" in out and "contract holds" in out
    config = tmp_path / "mine.yaml"  # a config method composing the plugin's form with a built-in one
    config.write_text("methods:\n  mine: {compose: [{form: ia3, site: kv}, {form: lowrank, site: ffn, r: 2}]}\n")
    assert main(["plugins", "check", "mine", "--config", str(config), "--backbone", "tiny-bart"]) == 0
    assert "forms: ia3 (petl-ia3 0.1.0), lowrank (petl-bench 0.1.0)" in capsys.readouterr().out


def test_two_distributions_claiming_one_name_names_both(site: Path) -> None:
    write_plugin(site, "petl-clash", "petl_fake_clash", plugin_source("clashvec", "lora"),
                 {"lora": "petl_fake_clash:METHOD"})
    claim = r"'lora' is claimed by both petl-(bench|clash) 0\.1\.0 and petl-(clash|bench)"
    with pytest.raises(ConfigError, match=claim):
        registry.methods()


def test_import_error_is_named_and_fenced_off(site: Path) -> None:
    from benchmark.plugins import check_method, list_plugins
    from benchmark.train import _method

    (site / "petl_fake_boom.py").write_text("raise ImportError('no module named petl_missing_dep')\n")
    write_plugin(site, "petl-boom", "petl_fake_boom_unused", "", {"boom": "petl_fake_boom:METHOD"})
    assert "lora" in registry.methods() and "ia3" in registry.methods()  # the others still load
    broken = registry.get_method("boom")
    assert isinstance(broken, registry.BrokenMethod)
    assert "petl-boom 0.1.0" in broken.problem and "petl_missing_dep" in broken.problem
    assert "BROKEN" in list_plugins()
    report = check_method("boom")
    assert not report.ok and report.violations[0].rule == "signature"
    assert "petl-boom 0.1.0" in str(report.violations[0])
    with pytest.raises(registry.PluginError, match="petl-boom"):
        _method(broken.to_dict())


def test_entry_point_that_is_not_a_method(site: Path) -> None:
    (site / "petl_fake_notm.py").write_text("def METHOD():\n    return 1\n")
    write_plugin(site, "petl-notm", "petl_fake_notm_unused", "", {"notm": "petl_fake_notm:METHOD"})
    problem = registry.get_method("notm").problem
    assert "petl-notm 0.1.0" in problem and "not a benchmark.methods.Method" in problem


@pytest.mark.parametrize("fault, rule", [
    (dict(attach_args="model"), "signature"),
    (dict(offset=1), "count"),
    (dict(split=16), "count"),  # half a vector named `bias` and declared a documented extra: not a linear bias
    (dict(returned="[]"), "names"),  # tensors attach does not return would escape the count and the delta
    (dict(fill="float('nan')"), "finite"),
    (dict(fill="2.0"), "identity"),
])
def test_bad_plugin_violations_name_rule_and_package(site: Path, fault: dict, rule: str) -> None:
    from benchmark.cli import main
    from benchmark.plugins import check_method

    name = f"bad{rule}{len(fault)}{''.join(map(str, fault))}".replace("_", "")
    module = f"petl_fake_{name}"
    write_plugin(site, "petl-bad", module, plugin_source(f"vec{name}", name, **fault), {name: f"{module}:METHOD"})
    report = check_method(name, ("tiny-gpt2",))
    assert [v.rule for v in report.violations] == [rule], report.format()
    assert report.forms == {f"vec{name}": "petl-bad 0.1.0"}  # registered as an import side effect
    assert "[petl-bad 0.1.0]" in str(report.violations[0])
    if "split" in fault:  # the old contract took any tensor named `bias` for a documented extra
        assert "declares 32 biases outside its formula, but its tensors hold 0" in str(report.violations[0])
    if rule == "count":  # the command exits non-zero on any violation
        assert main(["plugins", "check", name, "--backbone", "tiny-bert"]) == 1


@pytest.mark.parametrize("fault, words", [(dict(attach_args="model"), "attach"), (dict(offset=3), "count rule broken")])
def test_preflight_stops_a_bad_plugins_run_before_training(site: Path, fault: dict, words: str) -> None:
    """In the grid, a wrong signature or a wrong count fails the run (naming the package) before any training."""
    from benchmark.plugins import preflight

    write_plugin(site, "petl-bad", "petl_fake_pre", plugin_source("vecpre", "badpre", **fault),
                 {"badpre": "petl_fake_pre:METHOD"})
    with pytest.raises(registry.PluginError, match=rf"petl-bad 0\.1\.0.*{words}|{words}.*petl-bad 0\.1\.0"):
        preflight(registry.get_method("badpre"), "bart-large")  # meta device: any size checks in a second
    preflight(registry.get_method("ia3"), "bart-large")


def test_a_runs_spec_can_name_a_form_its_plugin_registers_on_import(site: Path) -> None:
    """A training job receives only the spec: it must import the plugins before parsing the composition."""
    from benchmark.train import _method

    write_plugin(site, "petl-side", "petl_fake_side", plugin_source("vecside", "side"),
                 {"side": "petl_fake_side:METHOD"})
    method = _method({"name": "side", "compose": [{"form": "vecside", "site": "ffn"}], "train_all": False,
                      "init": "pretrained", "source": "petl-side 0.1.0"})
    assert method.mods[0].form == "vecside" and method.source == "petl-side 0.1.0"
    assert registry.provenance(method)["package"] == "petl-side"
