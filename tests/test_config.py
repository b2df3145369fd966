"""Tests of parasol_hybrid.config: loading, validation and the messages of its errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent

from parasol_hybrid.config import CORE_OPTIONS, REQUIRED, Config, Option, at_least, load_config  # noqa: E402
from parasol_hybrid.errors import ConfigError  # noqa: E402
from parasol_hybrid.testing import write_config  # noqa: E402

BASE = {"nworker": 2, "nserver": 1}


@pytest.fixture(autouse=True)
def _no_env_override(monkeypatch):
    monkeypatch.delenv("PARASOL_SIMULATE_NODES", raising=False)


def error_of(source, **kw) -> str:
    with pytest.raises(ConfigError) as info:
        load_config(source, **kw)
    return str(info.value)


def test_defaults_and_access(tmp_path):
    path = write_config(tmp_path, **BASE, comment="a note", _why="ignored", description="d")
    cfg = load_config(path)
    assert isinstance(cfg, Config)
    assert cfg.path == path.resolve()
    assert (cfg.nworker, cfg["nserver"], cfg.rounds, cfg.staleness, cfg.output) == (2, 1, 10, 0, "output")
    assert cfg.get("nope", 7) == 7 and cfg.input is None and cfg.on_bad_line == "error"
    assert "comment" not in cfg and "_why" not in cfg and "limit_s" not in cfg
    assert set(cfg) == set(CORE_OPTIONS) - {"limit_s"}
    with pytest.raises(AttributeError):
        cfg.rounds = 3
    with pytest.raises(AttributeError, match="no key 'nope'"):
        cfg.nope
    d = cfg.as_dict()
    d["rounds"] = 99
    assert cfg.rounds == 10
    assert load_config(dict(BASE)).path is None


def test_unknown_key_is_named_with_suggestion(tmp_path):
    path = write_config(tmp_path, **BASE, roudns=3)
    msg = error_of(path)
    assert str(path) in msg and "'roudns'" in msg and "did you mean 'rounds'" in msg
    assert "nworker" in msg and "staleness" in msg  # the valid keys are listed


def test_wrong_type_message(tmp_path):
    msg = error_of(write_config(tmp_path, **BASE, rounds="10"))
    assert "config key 'rounds' must be an integer, got '10' (str)" in msg
    assert "config.json" in msg


@pytest.mark.parametrize("key", ["nworker", "rounds", "seed"])
def test_bool_is_not_an_int(key):
    msg = error_of({**BASE, key: True})
    assert f"config key '{key}' must be an integer, got True (bool)" in msg


def test_float_option_accepts_int_and_rejects_bool():
    opts = {"lr": Option(float, 0.1, "learning rate", at_least(0))}
    cfg = load_config({**BASE, "lr": 1}, options=opts)
    assert cfg.lr == 1.0 and isinstance(cfg.lr, float)
    assert load_config(dict(BASE), options=opts).lr == 0.1
    assert "must be a number" in error_of({**BASE, "lr": False}, options=opts)
    assert "'lr' must be at least 0, got -0.5" in error_of({**BASE, "lr": -0.5}, options=opts)


def test_bad_values_and_choices():
    assert "'nworker' must be at least 1, got 0" in error_of({**BASE, "nworker": 0})
    assert "'rounds' must be at least 0" in error_of({**BASE, "rounds": -1})
    assert "'staleness' must be at least -1" in error_of({**BASE, "staleness": -2})
    msg = error_of({**BASE, "on_bad_line": "ignore"})
    assert "'on_bad_line' must be one of 'error', 'skip', got 'ignore'" in msg
    assert load_config({**BASE, "on_bad_line": "skip"}).on_bad_line == "skip"
    assert "'output' must be a string, got null" in error_of({**BASE, "output": None})
    assert "non-empty list of strings" in error_of({**BASE, "input": ["a", 3]}, check_files=False)


def test_missing_required_key(tmp_path):
    msg = error_of(write_config(tmp_path, nworker=2))
    assert "missing required config key 'nserver'" in msg and "config.json" in msg


def test_invalid_json_names_file_and_line(tmp_path):
    path = tmp_path / "broken.json"
    path.write_text('{\n  "nworker": 2,\n  "nserver": 1,\n}\n')
    msg = error_of(path)
    assert str(path) in msg and "invalid JSON at line 4" in msg


def test_missing_file_and_non_object(tmp_path):
    assert "does not exist" in error_of(tmp_path / "none.json")
    path = tmp_path / "list.json"
    path.write_text(json.dumps([1, 2]))
    assert "must be a JSON object, got list" in error_of(path)


def test_input_paths_must_exist(tmp_path, monkeypatch):
    data = tmp_path / "data"
    (data / "sub").mkdir(parents=True)
    (data / "sub" / "part-0.txt").write_text("1 2 3\n")
    monkeypatch.chdir(tmp_path)
    ok = load_config({**BASE, "input": "data", "test_input": ["data/sub/part-0.txt", "data/**/*.txt"]})
    assert ok.test_input == ["data/sub/part-0.txt", "data/**/*.txt"]
    msg = error_of({**BASE, "input": "nothere.txt"})
    assert "'input'" in msg and "nothere.txt" in msg and "does not exist" in msg
    msg = error_of({**BASE, "test_input": ["data", "data/*.csv"]})
    assert "'test_input'" in msg and "data/*.csv" in msg and "matches no file" in msg
    assert load_config({**BASE, "input": "nothere.txt"}, check_files=False).input == "nothere.txt"


def test_limit_s_alias():
    assert load_config({**BASE, "limit_s": 3}).staleness == 3
    assert load_config({**BASE, "limit_s": 3, "staleness": 3}).staleness == 3
    assert load_config({**BASE, "limit_s": None, "staleness": -1}).staleness == -1
    msg = error_of({**BASE, "limit_s": 3, "staleness": 2})
    assert "'staleness'" in msg and "'limit_s'" in msg


def test_null_staleness_means_asp():
    assert load_config({**BASE, "staleness": None}).staleness == -1
    assert load_config({**BASE, "staleness": -1}).staleness == -1
    assert load_config({**BASE, "limit_s": None}).staleness == -1


def test_extra_options_merged():
    opts = {
        "rank": Option(int, REQUIRED, "latent dimension", at_least(1)),
        "rule": Option(str, "sgd", "update rule", choices=("sgd", "adagrad")),
        "layers": Option(list, [8, 8], "layer sizes"),
        "rounds": Option(int, 50, "algorithm default overrides the core one"),
    }
    cfg = load_config({**BASE, "rank": 16}, options=opts)
    assert (cfg.rank, cfg.rule, cfg.layers, cfg.rounds) == (16, "sgd", [8, 8], 50)
    assert cfg.layers is not opts["layers"].default
    assert "missing required config key 'rank'" in error_of(dict(BASE), options=opts)
    assert "did you mean 'rank'" in error_of({**BASE, "rank": 1, "rnak": 2}, options=opts)
    assert "did you mean" not in error_of({**BASE, "zzzzzz": 1})


def test_straggler_must_name_a_worker():
    assert load_config({**BASE, "straggler": {"worker": 1, "slowdown": 2.0}}).straggler["worker"] == 1
    assert "worker 2 does not exist" in error_of({**BASE, "straggler": {"worker": 2, "slowdown": 2.0}})
    assert "slowdown must be a number >= 1" in error_of({**BASE, "straggler": {"worker": 0, "slowdown": 0.5}})


def test_env_overrides_simulate_nodes(monkeypatch):
    big = {"nworker": 3, "nserver": 3}
    assert load_config({**big, "simulate_nodes": 2}).simulate_nodes == 2
    monkeypatch.setenv("PARASOL_SIMULATE_NODES", "3")
    assert load_config({**big, "simulate_nodes": 2}).simulate_nodes == 3
    assert load_config(dict(big)).simulate_nodes == 3
    # every simulated node needs a server and a worker: checked before any rank starts
    assert "must be at least the number of nodes" in error_of(dict(BASE))
    monkeypatch.setenv("PARASOL_SIMULATE_NODES", "0")
    msg = error_of(dict(BASE))
    assert "'simulate_nodes' must be at least 1" in msg and "PARASOL_SIMULATE_NODES" in msg
    monkeypatch.setenv("PARASOL_SIMULATE_NODES", "two")
    assert "PARASOL_SIMULATE_NODES must be an integer, got 'two'" in error_of(dict(BASE))
