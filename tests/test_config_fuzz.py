"""Fuzzed configs: every invalid one is rejected with a message naming the offending key."""
from __future__ import annotations

import copy

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from benchmark.config import load_config
from benchmark.errors import ConfigError

VALID = {"tasks": {"bit-xor": {"backbone": "tiny-bert"}},
         "grid": [{"tasks": ["bit-xor"], "methods": ["fpt", "lora"], "budgets": ["default"], "seeds": [1, 2]}]}
NAMES = st.text(alphabet="abcdefghijklmnopqrstuvwxyz-_0123456789", min_size=1, max_size=12)
JUNK = st.one_of(st.none(), st.booleans(), st.floats(allow_nan=False), st.text(max_size=5), st.lists(st.integers(),
                 max_size=2), st.dictionaries(NAMES, st.integers(), max_size=2))


def _set(cfg: dict, path: list, value) -> None:
    node = cfg
    for p in path[:-1]:
        node = node[p]
    node[path[-1]] = value


# (where the bad value goes, what the error must name, values that are invalid there)
MUTATIONS = [
    (["threads"], "threads", st.one_of(st.integers(max_value=0), st.text(max_size=3), st.none())),
    (["grid", 0, "seeds", 1], "grid[0].seeds[1]", st.one_of(st.integers(max_value=-1), st.text(max_size=3),
                                                           st.floats(allow_nan=False))),
    (["grid", 0, "tasks"], "grid[0].tasks", st.lists(NAMES.filter(lambda n: n not in {"bit-xor", "bit-memory",
                                                    "sst2", "mnli", "xsum", "listops", "digits", "mnist", "cifar10",
                                                    "cifar10-lra", "remote-homology", "wmt16-en-ro"}),
                                                    min_size=1, max_size=2)),
    (["grid", 0, "methods"], "grid[0].methods", st.lists(NAMES.map(lambda n: "zz" + n), min_size=1, max_size=2)),
    (["grid", 0, "budgets"], "grid[0].budgets", st.lists(NAMES.filter(lambda n: n != "default" and "pct" not in n
                                                                      and "-" not in n), min_size=1, max_size=2)),
    (["tasks", "bit-xor", "backbone"], "tasks.bit-xor.backbone", NAMES.map(lambda n: "zz" + n)),
    (["tasks", "bit-xor", "train"], "tasks.bit-xor.train", st.dictionaries(NAMES.map(lambda n: "zz" + n),
                                                                           st.integers(), min_size=1, max_size=2)),
    (["tasks", "bit-xor", "train"], "tasks.bit-xor.train.learning_rate",
     st.fixed_dictionaries({"learning_rate": st.one_of(st.floats(max_value=0.0, allow_nan=False), st.text(max_size=5),
                                                       st.none(), st.booleans())})),
    (["grid", 0, "train"], "grid[0].train.batch_size",
     st.fixed_dictionaries({"batch_size": st.one_of(st.integers(max_value=0), st.floats(allow_nan=False),
                                                    st.text(max_size=3))})),
    (["grid", 0], "grid[0]", st.just({"tasks": ["bit-xor"]})),
]

tried = {"configs": 0, "rejected": 0}


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(which=st.integers(0, len(MUTATIONS) - 1), data=st.data())
def test_fuzzed_invalid_configs_name_the_key(which: int, data) -> None:
    path, named, values = MUTATIONS[which]
    cfg = copy.deepcopy(VALID)
    _set(cfg, path, data.draw(values))
    tried["configs"] += 1
    try:
        load_config(cfg)
    except ConfigError as e:
        tried["rejected"] += 1
        assert named in str(e), f"{e} does not name {named}"
    else:
        raise AssertionError(f"accepted an invalid config: {cfg}")


@settings(max_examples=25, deadline=None)
@given(key=NAMES.filter(lambda k: k not in {"results", "resources", "data_dir", "threads", "gpus", "gpu_ids",
                                            "resources", "tasks", "methods", "grid"}), value=JUNK)
def test_unknown_top_level_keys_are_named(key: str, value) -> None:
    try:
        load_config({**VALID, key: value})
    except ConfigError as e:
        assert repr(key) in str(e)
    else:
        raise AssertionError(f"accepted unknown key {key!r}")


def test_fuzz_tried_and_rejected_all() -> None:
    """Runs after the fuzz above (file order): every generated invalid config was rejected."""
    assert tried["configs"] >= 80 and tried["rejected"] == tried["configs"]
