"""Tests for parasol_hybrid.data: input expansion, linesplit, parsers, partitioners."""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from parasol_hybrid.data import (  # noqa: E402
    PATTERNS,
    Line,
    Ratings,
    byte_ranges,
    count_words,
    expand_inputs,
    grid_shape,
    owner,
    parse_libsvm,
    parse_ratings,
    partition,
    read_all_lines,
    read_lines,
    select,
    stable_hash,
    tokenize,
)
from parasol_hybrid.errors import ConfigError, InputError  # noqa: E402

pytestmark = pytest.mark.timeout(60)

FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def write(path: Path, content: bytes | str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, str):
        content = content.encode("utf-8")
    path.write_bytes(content)
    return path


def lines_of(*texts: str, path: str = "in.txt") -> list[Line]:
    return [Line(Path(path), i + 1, t) for i, t in enumerate(texts)]


def expected_lines(path: Path, content: bytes) -> list[Line]:
    """Reference split: bytes split on \\n, last empty piece dropped, one \\r stripped."""
    pieces = content.split(b"\n")
    if pieces[-1] == b"":
        pieces.pop()
    out = []
    for i, piece in enumerate(pieces):
        text = piece.decode("utf-8", errors="replace")
        out.append(Line(path, i + 1, text[:-1] if text.endswith("\r") else text))
    return out


# ---------------------------------------------------------------- expand_inputs


def test_expand_single_file(tmp_path: Path) -> None:
    f = write(tmp_path / "a.txt", "x\n")
    assert expand_inputs(f) == [f]
    assert expand_inputs(str(f)) == [f]


def test_expand_directory_recursive_sorted_skips_hidden(tmp_path: Path) -> None:
    b = write(tmp_path / "d" / "b.txt", "1")
    a = write(tmp_path / "d" / "a.txt", "1")
    c = write(tmp_path / "d" / "sub" / "c.txt", "1")
    write(tmp_path / "d" / ".hidden", "1")
    write(tmp_path / "d" / ".git" / "config", "1")
    assert expand_inputs(tmp_path / "d") == [a, b, c]


def test_expand_globs(tmp_path: Path) -> None:
    a1 = write(tmp_path / "part-1.tsv", "1")
    a2 = write(tmp_path / "part-2.tsv", "1")
    write(tmp_path / "other.csv", "1")
    deep = write(tmp_path / "x" / "y" / "part-3.tsv", "1")
    assert expand_inputs(str(tmp_path / "part-*.tsv")) == [a1, a2]
    assert expand_inputs(str(tmp_path / "part-?.tsv")) == [a1, a2]
    assert expand_inputs(str(tmp_path / "part-[2].tsv")) == [a2]
    assert expand_inputs(str(tmp_path / "**" / "*.tsv")) == [a1, a2, deep]


def test_expand_list_dedupes_and_sorts(tmp_path: Path) -> None:
    a = write(tmp_path / "a.txt", "1")
    b = write(tmp_path / "b.txt", "1")
    got = expand_inputs([b, str(tmp_path / "*.txt"), a, tmp_path])
    assert got == [a, b]


def test_expand_is_deterministic(tmp_path: Path) -> None:
    for name in ["z", "m", "a", "q"]:
        write(tmp_path / name / f"{name}.dat", "1")
    assert expand_inputs(tmp_path) == expand_inputs(tmp_path) == sorted(expand_inputs(tmp_path))


@pytest.mark.parametrize(
    "spec, words",
    [
        ("missing.txt", "does not exist"),
        ("nothing-*.txt", "matches no files"),
        ("empty_dir", "no (non-hidden) files"),
    ],
)
def test_expand_errors_name_the_spec(tmp_path: Path, spec: str, words: str) -> None:
    (tmp_path / "empty_dir").mkdir()
    write(tmp_path / "empty_dir" / ".only_hidden", "1")
    full = str(tmp_path / spec)
    with pytest.raises(InputError) as err:
        expand_inputs(full)
    assert full in str(err.value)
    assert words in str(err.value)


def test_expand_error_in_list_names_the_bad_item(tmp_path: Path) -> None:
    a = write(tmp_path / "a.txt", "1")
    with pytest.raises(InputError, match="b.txt"):
        expand_inputs([a, tmp_path / "b.txt"])
    with pytest.raises(InputError, match="empty list"):
        expand_inputs([])


# ---------------------------------------------------------------- linesplit

LINE_BYTES = st.binary(max_size=12).map(lambda b: b.replace(b"\n", b""))
LINE_TEXT = st.one_of(
    LINE_BYTES,
    st.sampled_from([b"", b"\r", b"abc\r", "h\u00e9llo w\u00f6rld".encode(), b"\xff\xfe bad"]),
)
FILE_CONTENT = st.tuples(st.lists(LINE_TEXT, max_size=8), st.booleans()).map(
    lambda t: b"\n".join(t[0]) + (b"\n" if t[1] and t[0] else b"")
)


@FAST
@given(
    contents=st.lists(FILE_CONTENT, min_size=1, max_size=4),
    nworker=st.integers(1, 7),
    chunk_size=st.sampled_from([1, 2, 3, 7, 64, 1 << 22]),
)
def test_read_lines_partitions_every_line_once(
    tmp_path_factory: pytest.TempPathFactory, contents: list[bytes], nworker: int, chunk_size: int
) -> None:
    root = tmp_path_factory.mktemp("lines")
    files = [write(root / f"f{i}.txt", c) for i, c in enumerate(contents)]
    expected = [ln for f, c in zip(files, contents) for ln in expected_lines(f, c)]
    per_worker = [list(read_lines(files, w, nworker, chunk_size=chunk_size)) for w in range(nworker)]
    assert [ln for part in per_worker for ln in part] == expected
    assert list(read_all_lines(files, chunk_size=chunk_size)) == expected


@FAST
@given(sizes=st.lists(st.integers(0, 50), min_size=1, max_size=5), nworker=st.integers(1, 9))
def test_byte_ranges_cover_all_bytes_evenly(
    tmp_path_factory: pytest.TempPathFactory, sizes: list[int], nworker: int
) -> None:
    root = tmp_path_factory.mktemp("ranges")
    files = [write(root / f"f{i}", b"x" * s) for i, s in enumerate(sizes)]
    ranges = byte_ranges(files, nworker)
    assert len(ranges) == nworker
    lengths = [sum(end - start for _, start, end in r) for r in ranges]
    assert sum(lengths) == sum(sizes)
    assert max(lengths) - min(lengths) <= 1
    flat = [piece for r in ranges for piece in r]
    for f, size in zip(files, sizes):
        spans = [(s, e) for p, s, e in flat if p == f]
        assert all(s < e for s, e in spans)
        assert sum(e - s for s, e in spans) == size
        assert all(a[1] == b[0] for a, b in zip(spans, spans[1:]))


def test_read_lines_more_workers_than_lines(tmp_path: Path) -> None:
    f = write(tmp_path / "a.txt", "one\ntwo\r\nthree")
    empty = write(tmp_path / "b.txt", b"")
    parts = [list(read_lines([f, empty], w, 40)) for w in range(40)]
    got = [ln for part in parts for ln in part]
    assert got == [Line(f, 1, "one"), Line(f, 2, "two"), Line(f, 3, "three")]
    assert sum(1 for part in parts if part) == 3


def test_read_lines_line_numbers_past_large_prefix(tmp_path: Path) -> None:
    content = "".join(f"line {i}\n" for i in range(20000))
    f = write(tmp_path / "big.txt", content)
    last = list(read_lines([f], 3, 4, chunk_size=1000))
    assert last[-1] == Line(f, 20000, "line 19999")
    assert all(ln.text == f"line {ln.lineno - 1}" for ln in last)


def test_read_lines_bad_args_and_missing_file(tmp_path: Path) -> None:
    f = write(tmp_path / "a.txt", "x\n")
    with pytest.raises(ConfigError, match="worker"):
        read_lines([f], 2, 2)
    with pytest.raises(ConfigError, match="nworker"):
        read_lines([f], 0, 0)
    with pytest.raises(InputError, match="gone.txt"):
        read_lines([tmp_path / "gone.txt"], 0, 1)


# ---------------------------------------------------------------- parse_ratings


def test_parse_ratings_mixed_separators() -> None:
    got = parse_ratings(
        lines_of(
            "u1\ti1\t5",
            "u2,i2,4.5",
            "u3   i3  -1e-3  extra fields here",
            "  u4 ,\t i4 , 2  ",
            "",
            "   ",
            "# a comment line",
            "007 0x1 3",
        )
    )
    assert list(got.rows) == ["u1", "u2", "u3", "u4", "007"]
    assert list(got.cols) == ["i1", "i2", "i3", "i4", "0x1"]
    np.testing.assert_array_equal(got.values, [5.0, 4.5, -1e-3, 2.0, 3.0])
    assert got.rows.dtype == object and all(type(r) is str for r in got.rows)
    assert got.values.dtype == np.float64
    assert got.bad_lines == 0 and len(got) == 5


def test_parse_ratings_weight_optional() -> None:
    got = parse_ratings(lines_of("a b", "c d 2"), weight_required=False)
    np.testing.assert_array_equal(got.values, [1.0, 2.0])


def test_parse_ratings_empty() -> None:
    got = parse_ratings([])
    assert len(got) == 0 and got.rows.shape == (0,) and got.values.dtype == np.float64


@pytest.mark.parametrize(
    "text, problem",
    [
        ("a b", "expected at least 3 fields"),
        ("lonely", "expected at least 3 fields"),
        ("a b x", "weight 'x' is not a finite number"),
        ("a b nan", "not a finite number"),
        ("a b inf", "not a finite number"),
    ],
)
def test_parse_ratings_bad_line_names_path_and_line(text: str, problem: str) -> None:
    lines = lines_of("ok ok 1", text, path="data/r.tsv")
    with pytest.raises(InputError) as err:
        parse_ratings(lines)
    message = str(err.value)
    assert message.startswith(f"{Path('data/r.tsv')}:2: ")
    assert problem in message
    assert repr(text) in message


def test_parse_ratings_bad_line_text_truncated() -> None:
    text = "x" * 200
    with pytest.raises(InputError) as err:
        parse_ratings(lines_of(text))
    assert repr("x" * 80) in str(err.value)
    assert "x" * 81 not in str(err.value)


def test_parse_ratings_skip_counts_bad_lines() -> None:
    got = parse_ratings(lines_of("a b 1", "bad", "c d oops", "e f 2", "# fine"), on_bad_line="skip")
    assert list(got.rows) == ["a", "e"]
    assert got.bad_lines == 2


def test_parse_ratings_unknown_policy() -> None:
    with pytest.raises(ConfigError, match="on_bad_line"):
        parse_ratings([], on_bad_line="ignore")


def test_parse_ratings_from_file(tmp_path: Path) -> None:
    f = write(tmp_path / "r.csv", "a,b,1\r\nc,d,2\r\ne,f,zz\r\n")
    with pytest.raises(InputError, match=re.escape(f"{f}:3:")):
        parse_ratings(read_all_lines([f]))


def test_parse_ratings_many_lines(tmp_path: Path) -> None:
    content = "".join(f"user{i % 997}\titem{i % 113}\t{i % 5}.5\n" for i in range(100_000))
    f = write(tmp_path / "big.tsv", content)
    got = parse_ratings(read_all_lines([f]))
    assert len(got) == 100_000 and got.values[-1] == 4.5


# ---------------------------------------------------------------- parse_libsvm


def test_parse_libsvm_labels_and_csr() -> None:
    got = parse_libsvm(
        lines_of("+1 0:1.5 3:2", "-1 1:1", "1", "0 2:0.5 # trailing comment 9:9", "# only", "")
    )
    np.testing.assert_array_equal(got.labels, [1.0, 0.0, 1.0, 0.0])
    np.testing.assert_array_equal(got.indptr, [0, 2, 3, 3, 4])
    np.testing.assert_array_equal(got.indices, [0, 3, 1, 2])
    np.testing.assert_array_equal(got.data, [1.5, 2.0, 1.0, 0.5])
    assert got.n_features == 4 and got.bad_lines == 0
    assert got.indptr.dtype == np.int64 and got.indices.dtype == np.int64


def test_parse_libsvm_empty() -> None:
    got = parse_libsvm([])
    assert got.n_features == 0 and list(got.indptr) == [0] and len(got) == 0


@pytest.mark.parametrize(
    "text, problem",
    [
        ("2 1:1", "label '2'"),
        ("yes 1:1", "label 'yes'"),
        ("1 -3:1", "non-negative integer index"),
        ("1 3", "index:value"),
        ("1 a:1", "index:value"),
        ("1 3:x", "not a finite number"),
        ("1 3:nan", "not a finite number"),
    ],
)
def test_parse_libsvm_bad_lines(text: str, problem: str) -> None:
    with pytest.raises(InputError) as err:
        parse_libsvm(lines_of("1 1:1", text, path="s.svm"))
    assert str(err.value).startswith("s.svm:2: ") and problem in str(err.value)


def test_parse_libsvm_skip() -> None:
    got = parse_libsvm(lines_of("1 1:1", "5 1:1", "0 2:2", "1 x"), on_bad_line="skip")
    np.testing.assert_array_equal(got.labels, [1.0, 0.0])
    assert got.bad_lines == 2 and got.n_features == 3


# ---------------------------------------------------------------- words


def test_tokenize_examples() -> None:
    assert tokenize("Hello, world! foo-bar baz_qux 42") == ["Hello", "world", "foo-bar", "baz_qux", "42"]
    assert tokenize("na\u00efve caf\u00e9") == ["na", "ve", "caf"]
    assert tokenize("") == [] and tokenize("...") == []


@FAST
@given(st.text(alphabet=st.sampled_from(list("aZ09-_ ,.\t\u00e9\u4e2d\n")), max_size=40))
def test_tokenize_matches_regex_rule(text: str) -> None:
    assert tokenize(text) == re.findall(r"[-a-zA-Z0-9_]+", text)


@FAST
@given(st.lists(st.text(alphabet=st.sampled_from(list("ab-_ .\u00e9")), max_size=10), max_size=30))
def test_count_words_matches_tokenize(texts: list[str]) -> None:
    expected = Counter(w for t in texts for w in tokenize(t))
    assert count_words(lines_of(*texts)) == expected


def test_count_words_across_batches() -> None:
    texts = [f"w{i % 7} common" for i in range(10_000)]
    counts = count_words(lines_of(*texts))
    assert counts["common"] == 10_000 and sum(counts.values()) == 20_000


# ---------------------------------------------------------------- partition


def make_ratings(pairs: list[tuple[str, str]]) -> Ratings:
    rows = np.empty(len(pairs), dtype=object)
    cols = np.empty(len(pairs), dtype=object)
    rows[:] = [p[0] for p in pairs]
    cols[:] = [p[1] for p in pairs]
    return Ratings(rows, cols, np.arange(len(pairs), dtype=np.float64))


ID = st.text(alphabet="abcxyz0\u00e9", min_size=1, max_size=3)


@FAST
@given(pairs=st.lists(st.tuples(ID, ID), max_size=40), nworker=st.integers(1, 8))
def test_partition_each_triple_exactly_once(pairs: list[tuple[str, str]], nworker: int) -> None:
    ratings = make_ratings(pairs)
    for pattern in ("fmap", "smap", "fsmap"):
        owners = owner(ratings, pattern, nworker)
        assert owners.dtype == np.int64 and len(owners) == len(pairs)
        assert ((owners >= 0) & (owners < nworker)).all()
        parts = [partition(ratings, pattern, w, nworker) for w in range(nworker)]
        got = np.sort(np.concatenate([p.values for p in parts]))
        np.testing.assert_array_equal(got, ratings.values)


@FAST
@given(pairs=st.lists(st.tuples(ID, ID), max_size=40), nworker=st.integers(1, 8))
def test_partition_keeps_ids_together(pairs: list[tuple[str, str]], nworker: int) -> None:
    ratings = make_ratings(pairs)
    p, q = grid_shape(nworker)
    by_row = owner(ratings, "fmap", nworker)
    by_col = owner(ratings, "smap", nworker)
    grid = owner(ratings, "fsmap", nworker)
    for i in range(len(pairs)):
        for j in range(len(pairs)):
            if pairs[i][0] == pairs[j][0]:
                assert by_row[i] == by_row[j] and grid[i] // q == grid[j] // q
            if pairs[i][1] == pairs[j][1]:
                assert by_col[i] == by_col[j] and grid[i] % q == grid[j] % q


@pytest.mark.parametrize("nworker", range(1, 9))
def test_fsmap_grid_shape(nworker: int) -> None:
    p, q = grid_shape(nworker)
    assert p * q == nworker and p <= q
    assert p == max(d for d in range(1, nworker + 1) if nworker % d == 0 and d * d <= nworker)
    ids = [f"id{i}" for i in range(300)]
    ratings = make_ratings([(a, b) for a in ids[:30] for b in ids[:30]])
    assert set(owner(ratings, "fsmap", nworker)) == set(range(nworker))


def test_grid_shape_examples() -> None:
    assert [grid_shape(n) for n in (1, 2, 4, 6, 7, 8, 12)] == [
        (1, 1), (1, 2), (2, 2), (2, 3), (1, 7), (2, 4), (3, 4)
    ]


def test_unknown_pattern_lists_valid_ones() -> None:
    ratings = make_ratings([("a", "b")])
    with pytest.raises(InputError) as err:
        partition(ratings, "rowmap", 0, 2)
    for name in PATTERNS:
        assert repr(name) in str(err.value)
    assert "'rowmap'" in str(err.value)


def test_linesplit_partition_keeps_input() -> None:
    ratings = make_ratings([("a", "b"), ("c", "d")])
    assert partition(ratings, "linesplit", 1, 2) is ratings
    with pytest.raises(InputError, match="linesplit"):
        owner(ratings, "linesplit", 2)


def test_select_by_mask_and_index() -> None:
    ratings = make_ratings([("a", "b"), ("c", "d"), ("e", "f")])
    ratings.bad_lines = 4
    picked = select(ratings, np.array([True, False, True]))
    assert list(picked.rows) == ["a", "e"] and picked.bad_lines == 4
    assert list(select(ratings, np.array([1])).cols) == ["d"]


def test_stable_hash_known_properties() -> None:
    ids = np.array(["a", "b", "a", "\u00e9"], dtype=object)
    h = stable_hash(ids)
    assert h.dtype == np.uint64 and h[0] == h[2] and h[0] != h[1]
    np.testing.assert_array_equal(stable_hash(np.array(["a", "b"])), h[:2])
    assert stable_hash(np.array([], dtype=object)).shape == (0,)


def test_stable_hash_same_in_another_process() -> None:
    ids = ["user1", "item-42", "\u00e9t\u00e9", ""]
    here = [int(x) for x in stable_hash(np.array(ids, dtype=object))]
    code = (
        "import sys, numpy as np\n"
        "from parasol_hybrid.data import stable_hash\n"
        f"print([int(x) for x in stable_hash(np.array({ids!r}, dtype=object))])\n"
    )
    env = dict(os.environ, PYTHONHASHSEED="12345")
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=env, check=True
    )
    assert ast.literal_eval(out.stdout.strip()) == here
