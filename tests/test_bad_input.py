"""Bad input: parsers never crash or guess (hypothesis), and a job names the bad file and line."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from parasol_hybrid.data import Line, parse_libsvm, parse_ratings
from parasol_hybrid.errors import InputError
from parasol_hybrid.testing import run_launcher, write_config

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.timeout(120)

text = st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\n\r"), max_size=40)


def _valid_rating(fields: list[str]) -> bool:
    if len(fields) < 3:
        return False
    try:
        return math.isfinite(float(fields[2]))
    except ValueError:
        return False


@settings(max_examples=200, deadline=None)
@given(st.lists(text, max_size=30))
def test_parse_ratings_skips_exactly_the_bad_lines(lines):
    src = [Line(Path("f.tsv"), i + 1, t) for i, t in enumerate(lines)]
    got = parse_ratings(src, on_bad_line="skip")
    split = [t.replace(",", " ").replace("\t", " ").split() for t in lines]
    fields = [f for f in split if f and not f[0].startswith("#")]  # a line of commas only is blank
    good = [f for f in fields if _valid_rating(f)]
    assert len(got) == len(good)
    assert got.bad_lines == len(fields) - len(good)
    assert list(got.rows) == [f[0] for f in good] and list(got.cols) == [f[1] for f in good]


@settings(max_examples=200, deadline=None)
@given(st.lists(text, max_size=30))
def test_parse_ratings_error_names_file_and_line(lines):
    src = [Line(Path("data/f.tsv"), i + 1, t) for i, t in enumerate(lines)]
    try:
        parse_ratings(src, on_bad_line="error")
    except InputError as exc:
        assert str(exc).startswith("data/f.tsv:")
        lineno = int(str(exc).split(":")[1])
        assert 1 <= lineno <= len(lines)
        bad = lines[lineno - 1].replace(",", " ").replace("\t", " ").split()
        assert not _valid_rating(bad)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(text, st.builds(lambda y, f: f"{y} " + " ".join(f"{i}:{v}" for i, v in f),
                                          st.sampled_from(["0", "1", "-1", "+1", "2", "x"]),
                                          st.lists(st.tuples(st.integers(-3, 50), st.floats(allow_nan=True)),
                                                   max_size=5))), max_size=30))
def test_parse_libsvm_never_crashes(lines):
    src = [Line(Path("f.svm"), i + 1, t) for i, t in enumerate(lines)]
    got = parse_libsvm(src, on_bad_line="skip")
    assert len(got.labels) + got.bad_lines <= len(lines)
    assert set(got.labels.tolist()) <= {0.0, 1.0}
    assert len(got.indptr) == len(got.labels) + 1
    assert (got.indices >= 0).all()


def _ratings_with_bad_line(tmp_path: Path) -> Path:
    lines = [f"u{i % 7}\ti{i % 11}\t{1 + i % 5}" for i in range(200)]
    lines[57] = "u1\ti2\tfive"
    path = tmp_path / "ratings.tsv"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_job_names_the_bad_line(tmp_path):
    data = _ratings_with_bad_line(tmp_path)
    cfg = write_config(tmp_path, nworker=2, nserver=1, input=str(data), output=str(tmp_path / "out"), rounds=2)
    done = run_launcher(["--config", str(cfg), "python", str(REPO / "algs" / "mf.py")], timeout=90)
    assert done.returncode != 0
    assert f"{data}:58" in done.stderr, done.stderr


def test_job_skips_and_counts_bad_lines(tmp_path):
    data = _ratings_with_bad_line(tmp_path)
    cfg = write_config(tmp_path, nworker=2, nserver=1, input=str(data), output=str(tmp_path / "out"), rounds=2,
                       on_bad_line="skip")
    done = run_launcher(["--config", str(cfg), "python", str(REPO / "algs" / "mf.py")], timeout=90)
    assert done.returncode == 0, done.stderr
    metrics = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert metrics["bad_lines"] == 1 and metrics["ratings"] == 199
