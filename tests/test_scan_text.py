"""The compiled libsvm and words parsers against the Python parsers (the independent reference).

``scan_libsvm(files, w, n, policy)`` must equal ``parse_libsvm(read_lines(files, w, n), policy)``
bit for bit (values compared as bytes, so -0.0 and the last ulp count), with the same error text;
``scan_libsvm(..., labels="real")`` the same against ``parse_regression`` (Lasso's Python parser) and
scikit-learn's ``load_svmlight_file``;
``scan_words`` must equal ``count_words(read_lines(...))``; ``scan_documents`` must give the documents
of LDA's Python tokenizer (``re.findall("[a-z]+", text.lower())``, runs of 3+, non-blank lines); the workers' shares must add up to the
whole for any number of workers and any chunk size.
"""

from __future__ import annotations

import subprocess
import sys
from collections import Counter

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from parasol_hybrid.data import count_words, parse_libsvm, read_lines
from parasol_hybrid.data.scan_text import parse_regression, scan_documents, scan_libsvm, scan_words, word_keys
from parasol_hybrid.errors import ConfigError, InputError

pytestmark = pytest.mark.timeout(60)
FIELDS = ("labels", "indptr", "indices", "data")
FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def _write(tmp_path, name: str, content: bytes):
    path = tmp_path / name
    path.write_bytes(content)
    return path


def _assert_same(got, want):
    for field in FIELDS:
        a, b = getattr(got, field), getattr(want, field)
        assert a.dtype == b.dtype, field
        assert a.tobytes() == b.tobytes(), (field, a, b)
    assert got.n_features == want.n_features
    assert got.bad_lines == want.bad_lines


def _outcome(fn):
    """("ok", result) or ("error", type, message)."""
    try:
        return ("ok", fn())
    except (InputError, ValueError, OverflowError) as exc:
        return ("error", type(exc), str(exc))


def _check_libsvm(files, nworker=1, policy="skip", chunk_bytes=1 << 20):
    """Every worker's scan equals the reference on its range; the concatenation equals the whole."""
    for worker in range(nworker):
        got = _outcome(lambda: scan_libsvm(files, worker, nworker, policy, chunk_bytes=chunk_bytes))
        want = _outcome(lambda: parse_libsvm(read_lines(files, worker, nworker), policy))
        assert got[0] == want[0], (got, want)
        if got[0] == "error":
            assert got[1:] == want[1:]
        else:
            _assert_same(got[1], want[1])


EDGE = (
    b"# a header comment\n"
    b"1 1:0.5 3:2e3 # trailing comment 9:9\n"
    b"\n"
    b"   \t \n"
    b"-1 2:0.12345678901234567 4:1_0\r\n"
    b"+1 5:inf\n"
    b"0 7:1e400\n"
    b"1.0 3:-0 9:1e-5 10:.5 11:5. 12:+.5E+3\n"
    b"x 1:2\n"
    b"1 caf\xc3\xa9:2\n"
    b"1 2:3\xc2\xa04:5\n"
    b"0\x0b1:2\x1c3:4\x0c\n"
    b"1 1:2#3:4\n"
    b"1 007:1e22 8:1e23 9:9007199254740993 10:4.9e-324 11:2.2250738585072014e-308\n"
    b"0 1:1.7976931348623157e308 2:1e-400 3:0e500 4:-0.0e-5 5:123456789012345678e-5\n"
    b"2 1:1\n"
    b"1 1:\n"
    b"1 :1\n"
    b"1 1:2:3\n"
    b"1 -1:2\n"
    b"1 1:0x1p3\n"
    b"1 1:nan 2:1\n"
    b"1e0 1:1e\n"
    b"-1.000 99999999999:1\n"
    b"1 1:1\xff\n"
    b"0 3:1.5\r"
)


@pytest.mark.parametrize("nworker", [1, 2, 3, 4])
def test_libsvm_edge_cases_skip_every_split(tmp_path, nworker):
    files = [_write(tmp_path, "a.svm", EDGE), _write(tmp_path, "b.svm", b"1 1:1\n0 2:2")]
    _check_libsvm(files, nworker, "skip")
    assert scan_libsvm(files, 0, 1, "skip").bad_lines == 13
    whole = scan_libsvm(files, 0, 1, "skip")
    parts = [scan_libsvm(files, w, nworker, "skip") for w in range(nworker)]
    assert np.concatenate([p.labels for p in parts]).tobytes() == whole.labels.tobytes()
    assert np.concatenate([p.data for p in parts]).tobytes() == whole.data.tobytes()
    assert np.concatenate([p.indices for p in parts]).tolist() == whole.indices.tolist()


def test_libsvm_small_chunks(tmp_path):
    files = [_write(tmp_path, "a.svm", EDGE * 3)]
    for chunk_bytes in (1, 7, 64, 1000):
        _check_libsvm(files, 2, "skip", chunk_bytes=chunk_bytes)


def test_libsvm_error_names_file_and_line(tmp_path):
    good = b"1 1:1\r\n# c\n\n0 2:0.25\n"
    for bad in (b"2 1:1", b"1 1:inf", b"1 x:1", b"1 caf\xc3\xa9:2", b"1 1:1e400", b"1 1:nan"):
        path = _write(tmp_path, "e.svm", good * 3 + bad + b"\n" + good)
        with pytest.raises(InputError) as got:
            scan_libsvm([path], 0, 1)
        with pytest.raises(InputError) as want:
            parse_libsvm(read_lines([path], 0, 1))
        assert str(got.value) == str(want.value)
        assert str(got.value).startswith(f"{path}:13: ")
        for nworker in (2, 3):
            _check_libsvm([path], nworker, "error", chunk_bytes=16)


def test_libsvm_policy_is_checked(tmp_path):
    path = _write(tmp_path, "a.svm", b"1 1:1\n")
    with pytest.raises(ConfigError, match="on_bad_line"):
        scan_libsvm([path], 0, 1, "ignore")


SPECIAL = ["0.1", "1e22", "1e23", "9007199254740992", "9007199254740993", "4.9e-324", "5e-325",
           "2.2250738585072011e-308", "1.7976931348623157e308", "1.7976931348623159e308", "1e308",
           "123456789012345678901234567890", "0.000000000000000000000000000001", "1e-22", "1e-23",
           "8.98846567431158e307", "-0", "+0", "00000000000000000000001.5", "1.50000000000000000000",
           "3.14159265358979323846264338327950288", "1e+00022", "9999999999999999e22", "1_0", "0x1p3",
           "inf", "-Infinity", "nan", "1e", "e1", ".", "--1", "1.2.3", "١", "1e99999999999999", "1e-99999999"]


def test_libsvm_values_bit_identical_to_float(tmp_path):
    lines = [f"1 1:{v}\n" for v in SPECIAL]
    path = _write(tmp_path, "v.svm", "".join(lines).encode("utf-8"))
    _check_libsvm([path], 1, "skip")
    got = scan_libsvm([path], 0, 1, "skip")
    finite = []
    for v in SPECIAL:
        try:
            x = float(v)
        except ValueError:
            continue
        if np.isfinite(x):
            finite.append(x)
    assert np.array(finite).tobytes() == got.data.tobytes()  # float() itself, not only parse_libsvm


def test_libsvm_values_near_the_exact_limits(tmp_path):
    """Mantissas around 2^53 and exponents around ±22, where the kernel's exact path ends."""
    rng = np.random.default_rng(3)
    mantissas = np.concatenate([rng.integers(2**52, 2**56, 1500), rng.integers(1, 10**6, 500)])
    powers = rng.integers(-25, 26, len(mantissas))
    values = [f"{m}e{p}" for m, p in zip(mantissas.tolist(), powers.tolist())]
    values += [f"0.{m:017d}" for m in rng.integers(10**15, 10**17, 500).tolist()]
    path = _write(tmp_path, "l.svm", "".join(f"0 1:{v}\n" for v in values).encode())
    got = scan_libsvm([path], 0, 1)
    assert got.data.tobytes() == np.array([float(v) for v in values]).tobytes()


_digits = st.text(alphabet="0123456789", min_size=0, max_size=25)


@st.composite
def decimals(draw):
    sign = draw(st.sampled_from(["", "-", "+"]))
    whole, frac = draw(_digits), draw(_digits)
    if not (whole or frac):
        whole = "0"
    text = sign + whole + (("." + frac) if frac or draw(st.booleans()) else "")
    if draw(st.booleans()):
        text += draw(st.sampled_from("eE")) + draw(st.sampled_from(["", "-", "+"])) + str(
            draw(st.integers(0, 400)))
    return text


@FAST
@given(values=st.lists(decimals(), min_size=1, max_size=40))
def test_libsvm_random_decimals_bit_identical(tmp_path, values):
    path = _write(tmp_path, "r.svm", "".join(f"0 {j}:{v}\n" for j, v in enumerate(values)).encode())
    _check_libsvm([path], 1, "skip")


_token = st.sampled_from(
    ["1", "0", "-1", "+1", "1.0", "2", "x", "3:4", "10:0.5", "7:-2.5e-3", "1:1e400", "2:inf", "5:1_0", "#",
     "# c 1:2", "caf\u00e9", "4:\u00a0", "8:", ":8", "9:1:2", "0.1234567890123456789", "6:1e-30", "12:00.010"])
_space = st.sampled_from([" ", "  ", "\t", "\x0b", "\x0c", "\x1c", "\x1f", "\u00a0", "\u3000"])


@st.composite
def libsvm_text(draw):
    lines = []
    for _ in range(draw(st.integers(0, 12))):
        tokens = draw(st.lists(_token, max_size=6))
        seps = draw(st.lists(_space, min_size=len(tokens) + 1, max_size=len(tokens) + 1))
        line = seps[0] + "".join(t + s for t, s in zip(tokens, seps[1:]))
        lines.append(line + draw(st.sampled_from(["\n", "\r\n", "\n"])))
    text = "".join(lines)
    if text and draw(st.booleans()):
        text = text.rstrip("\n")  # no final newline
    return text.encode("utf-8") + draw(st.sampled_from([b"", b"\xff", b"\xe2\x82"]))


@FAST
@given(content=libsvm_text(), nworker=st.integers(1, 4), policy=st.sampled_from(["skip", "error"]),
       chunk_bytes=st.sampled_from([1, 13, 1 << 20]))
def test_libsvm_random_lines(tmp_path, content, nworker, policy, chunk_bytes):
    path = _write(tmp_path, "h.svm", content)
    _check_libsvm([path], nworker, policy, chunk_bytes)


def test_libsvm_many_deferred_values(tmp_path):
    """More deferred (Python float()) values than one pass holds, also on one line."""
    rng = np.random.default_rng(1)
    rows = [" ".join(f"{j}:{v!r}" for j, v in enumerate(rng.standard_normal(40))) for _ in range(600)]
    rows.append(" ".join(f"{j}:{v!r}" for j, v in enumerate(rng.standard_normal(20000))))
    path = _write(tmp_path, "d.svm", "".join(f"1 {r}\n" for r in rows).encode())
    _check_libsvm([path], 2, "skip")


# ------------------------------------------------------------------ real targets (regression)

def _check_regression(files, nworker=1, policy="skip", chunk_bytes=1 << 20):
    """Every worker's real-target scan equals ``parse_regression`` of its range (bit for bit, or the
    same error); the workers' rows add up to the whole."""
    whole = []
    for worker in range(nworker):
        got = _outcome(lambda: scan_libsvm(files, worker, nworker, policy, labels="real", chunk_bytes=chunk_bytes))
        want = _outcome(lambda: parse_regression(read_lines(files, worker, nworker), policy))
        assert got[0] == want[0], (got, want)
        if got[0] == "error":
            assert got[1:] == want[1:]
            continue
        rows, (targets, indptr, indices, data, n_features, bad) = got[1], want[1]
        for a, b in ((rows.labels, targets), (rows.indptr, indptr), (rows.indices, indices), (rows.data, data)):
            assert a.dtype == b.dtype
            assert a.tobytes() == b.tobytes(), (a, b)
        assert (rows.n_features, rows.bad_lines) == (n_features, bad)
        whole.append(rows)
    return whole


REGRESSION = (
    b"# targets are real numbers\n"
    b"2.5 1:0.5 3:2e3 # trailing comment 9:9\n"
    b"\n"
    b"-3e2 2:0.12345678901234567 4:1_0\r\n"
    b"0.1234567890123456789 5:1\n"
    b"1e400 1:1\n"
    b"inf 1:1\n"
    b"nan 1:1\n"
    b"-0 1:-0\n"
    b"7\n"
    b"1.5#c 1:1\n"
    b"1_0 1:1\n"
    b"+1:2 3:4\n"
    b"4 +1:2 -0:3\n"
    b"4 -1:2\n"
    b"4 1:2:3\n"
    b"4 1\n"
    b"4 1:\n"
    b"4 :1\n"
    b"4 x:1\n"
    b"4 1:inf\n"
    b"4 1:nan\n"
    b"\xd9\xa1 \xd9\xa2:3\n"
    b"12345678901234567890123 1:1e-400 2:1.7976931348623157e308\n"
    b"-1.000 99999999999:1\n"
    b"3 1:1\xff\n"
    b"5 2:3\xc2\xa04:5\n"
    b"0\x0b1:2\x1c3:4\x0c\n"
    b"9.75 3:1.5\r"
)


@pytest.mark.parametrize("nworker", [1, 2, 3, 4])
def test_regression_edge_cases_skip_every_split(tmp_path, nworker):
    files = [_write(tmp_path, "a.svm", REGRESSION), _write(tmp_path, "b.svm", b"1.25 1:1\n-2 2:2")]
    parts = _check_regression(files, nworker, "skip")
    whole = scan_libsvm(files, 0, 1, "skip", labels="real")
    assert whole.bad_lines == 13
    assert np.concatenate([p.labels for p in parts]).tobytes() == whole.labels.tobytes()
    assert np.concatenate([p.data for p in parts]).tobytes() == whole.data.tobytes()
    assert np.concatenate([p.indices for p in parts]).tolist() == whole.indices.tolist()
    # the kernel keeps a real target as written, where scan_libsvm's binary labels refuse it
    assert whole.labels[:3].tolist() == [2.5, -300.0, 0.1234567890123456789]
    assert scan_libsvm(files, 0, 1, "skip").bad_lines > whole.bad_lines


def test_regression_small_chunks(tmp_path):
    files = [_write(tmp_path, "a.svm", REGRESSION * 3)]
    for chunk_bytes in (1, 7, 64, 1000):
        _check_regression(files, 2, "skip", chunk_bytes=chunk_bytes)


def test_regression_error_names_file_and_line(tmp_path):
    good = b"1.5 1:1\r\n# c\n\n-0.25 2:0.25\n"
    for bad in (b"x 1:1", b"inf 1:1", b"1e400 1:1", b"1 1:nan", b"1 -1:2", b"1 1:2:3", b"1 caf\xc3\xa9:2"):
        path = _write(tmp_path, "e.svm", good * 3 + bad + b"\n" + good)
        with pytest.raises(InputError) as got:
            scan_libsvm([path], 0, 1, labels="real")
        with pytest.raises(InputError) as want:
            parse_regression(read_lines([path], 0, 1))
        assert str(got.value) == str(want.value)
        assert str(got.value).startswith(f"{path}:13: ")
        for nworker in (2, 3):
            _check_regression([path], nworker, "error", chunk_bytes=16)


def test_regression_labels_kind_is_checked(tmp_path):
    path = _write(tmp_path, "a.svm", b"1 1:1\n")
    with pytest.raises(ConfigError, match="labels must be one of"):
        scan_libsvm([path], 0, 1, labels="float")


def test_regression_many_deferred_targets(tmp_path):
    """More deferred (Python float()) targets and values than one pass holds."""
    rng = np.random.default_rng(4)
    rows = [f"{t!r} 1:{v!r} 2:0.5" for t, v in zip(rng.standard_normal(40_000), rng.standard_normal(40_000))]
    path = _write(tmp_path, "t.svm", "".join(f"{r}\n" for r in rows).encode())
    _check_regression([path], 2, "skip")


def test_regression_matches_sklearn(tmp_path):
    """On scikit-learn's own dump of a random sparse set, ``load_svmlight_file`` reads the same numbers."""
    from scipy.sparse import random as sparse_random
    from sklearn.datasets import dump_svmlight_file, load_svmlight_file

    rng = np.random.default_rng(5)
    X = sparse_random(500, 60, density=0.1, format="csr", random_state=6)
    y = rng.standard_normal(500) * 100
    path = tmp_path / "s.svm"
    dump_svmlight_file(X, y, str(path), zero_based=True)
    got = scan_libsvm([path], 0, 1, labels="real")
    want_X, want_y = load_svmlight_file(str(path), n_features=60, zero_based=True)
    assert got.labels.tobytes() == want_y.tobytes()
    assert got.indptr.tolist() == want_X.indptr.tolist()
    assert got.indices.tolist() == want_X.indices.tolist()
    assert got.data.tobytes() == want_X.data.tobytes()


_real_token = st.sampled_from(
    ["1", "0", "-1", "2.5", "-3e-7", "1e400", "inf", "nan", "x", "3:4", "+3:4", "-3:4", "10:0.5", "7:-2.5e-3",
     "2:inf", "5:1_0", "#", "# c 1:2", "\u0661", "4:\u00a0", "8:", ":8", "9:1:2", "0.1234567890123456789",
     "6:1e-30", "12:00.010", "1_0"])


@st.composite
def regression_text(draw):
    lines = []
    for _ in range(draw(st.integers(0, 12))):
        tokens = draw(st.lists(_real_token, max_size=6))
        seps = draw(st.lists(_space, min_size=len(tokens) + 1, max_size=len(tokens) + 1))
        line = seps[0] + "".join(t + s for t, s in zip(tokens, seps[1:]))
        lines.append(line + draw(st.sampled_from(["\n", "\r\n", "\n"])))
    text = "".join(lines)
    if text and draw(st.booleans()):
        text = text.rstrip("\n")
    return text.encode("utf-8") + draw(st.sampled_from([b"", b"\xff", b"\xe2\x82"]))


@FAST
@given(content=regression_text(), nworker=st.integers(1, 4), policy=st.sampled_from(["skip", "error"]),
       chunk_bytes=st.sampled_from([1, 13, 1 << 20]))
def test_regression_random_lines(tmp_path, content, nworker, policy, chunk_bytes):
    _check_regression([_write(tmp_path, "h.svm", content)], nworker, policy, chunk_bytes)


@FAST
@given(targets=st.lists(decimals(), min_size=1, max_size=40))
def test_regression_random_targets_bit_identical(tmp_path, targets):
    path = _write(tmp_path, "r.svm", "".join(f"{t} 1:{t}\n" for t in targets).encode())
    _check_regression([path], 1, "skip")


def _check_words(files, nworker, chunk_bytes=1 << 20):
    total = Counter()
    for worker in range(nworker):
        got = scan_words(files, worker, nworker, chunk_bytes=chunk_bytes)
        want = count_words(read_lines(files, worker, nworker))
        assert got == want
        assert list(got) == list(want)  # the same order too: first appearance
        assert all(type(w) is str for w in got)
        total.update(got)
    assert total == count_words(read_lines(files, 0, 1))


WORDS = (b"Foo foo-bar_baz FOO\n\nna\xc3\xafve caf\xc3\xa9 x--y __\r\n\xe2\x82\xac10 a\xffb\xfe\xe2\x82c\x00d\n"
         b"tab\tsep,comma;semi 1.5e3 CR\rmid \xf0\x9f\x98\x80emoji-\xf0\x9f\x98\x80\nend")


@pytest.mark.parametrize("nworker", [1, 2, 3, 4])
def test_words_edge_cases_every_split(tmp_path, nworker):
    files = [_write(tmp_path, "a.txt", WORDS), _write(tmp_path, "b.txt", b"end END\nend"),
             _write(tmp_path, "c.txt", b"")]
    _check_words(files, nworker)
    _check_words(files, nworker, chunk_bytes=5)


def test_words_non_ascii_bytes_separate(tmp_path):
    """utf-8 characters and invalid bytes (>= 0x80) end a word, in both counters."""
    path = _write(tmp_path, "u.txt", b"a\xffb caf\xc3\xa9 na\xc3\xafve \xe2\x82x-1_Z\r\n\xc3")
    want = Counter({"a": 1, "b": 1, "caf": 1, "na": 1, "ve": 1, "x-1_Z": 1})
    assert count_words(read_lines([path], 0, 1)) == want
    assert scan_words([path], 0, 1) == want


def test_words_many_distinct(tmp_path):
    """Enough distinct words to grow the slot table, the word arrays and the byte arena many times."""
    rng = np.random.default_rng(2)
    vocab = [f"w{j}_{'x' * (j % 50)}" for j in range(50_000)]  # 32 Ki words and 1 MiB of bytes at first
    picks = rng.integers(0, len(vocab), 120_000)
    path = _write(tmp_path, "m.txt", "\n".join(" ".join(vocab[p] for p in picks[i:i + 9])
                                               for i in range(0, len(picks), 9)).encode())
    _check_words([path], 2)


@FAST
@given(content=st.binary(max_size=300) | st.text(alphabet="ab-_ Z9\n\r\t\u00e9\u20ac", max_size=300).map(
    lambda t: t.encode("utf-8")), nworker=st.integers(1, 4))
def test_words_random_bytes(tmp_path, content, nworker):
    _check_words([_write(tmp_path, "r.txt", content)], nworker, chunk_bytes=17)


def _reference_key(word: str) -> int:
    """FNV-1a 64 then splitmix64's finaliser (idhash.hash_bytes), in plain Python integers, shifted to 63 bits."""
    m = (1 << 64) - 1
    h = 0xCBF29CE484222325
    for b in word.encode("utf-8"):
        h = ((h ^ b) * 0x100000001B3) & m
    for shift, mult in ((30, 0xBF58476D1CE4E5B9), (27, 0x94D049BB133111EB)):
        h ^= h >> shift
        h = (h * mult) & m
    h ^= h >> 31
    return h >> 1


def test_word_keys_stable_and_distinct():
    words = ["", "a", "b", "ab", "ba", "foo-bar", "caf\u00e9"] + [f"w{j}" for j in range(5_000)]
    keys = word_keys(words)
    assert keys.dtype == np.int64 and (keys >= 0).all()
    assert keys.tolist() == [_reference_key(w) for w in words]
    assert len(set(keys.tolist())) == len(words)
    assert word_keys([]).shape == (0,)
    code = "from parasol_hybrid.data.scan_text import word_keys; print(word_keys(['foo-bar'])[0])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert int(out.stdout) == _reference_key("foo-bar")


# ------------------------------------------------------------------ documents (LDA)

def _reference_documents(files, worker, nworker, min_length=3):
    """LDA's Python spelling: lower-case runs of [a-z] of min_length+ letters, one list per non-blank line."""
    import re

    return [[w for w in re.findall("[a-z]+", ln.text.lower()) if len(w) >= min_length]
            for ln in read_lines(files, worker, nworker) if ln.text.strip()]


def _check_documents(files, nworker, chunk_bytes=1 << 20, min_length=3):
    everything = []
    for worker in range(nworker):
        got = scan_documents(files, worker, nworker, min_length=min_length, chunk_bytes=chunk_bytes)
        want = _reference_documents(files, worker, nworker, min_length)
        assert got.lists() == want
        assert got.doc_ptr.dtype == np.int64 and got.doc_ptr[0] == 0 and len(got) == len(want)
        counts = Counter(w for doc in want for w in doc)
        assert got.words == list(counts)  # first appearance order
        assert got.counts.tolist() == list(counts.values())
        assert all(type(w) is str for w in got.words)
        everything += want
    assert everything == _reference_documents(files, 0, 1, min_length)


DOCUMENTS = ("The quick BROWN fox, jumps; over-the lazy_dog 42 times\n"
             "\n  \t \r\n"
             "\u0130stanbul o\u212ak \u212a\u212a\u212a \u0130\u0130\u0130abc ab\u0130c AB\u0130\u0130\n"
             "\u00a0\u3000\u2028\n"
             "\u00a0x\u00a0\n"
             "12 34 .. !\n"
             "caf\u00e9 na\u00efve \u00c9COLE stra\u00dfe \u03a3\u03a3\u03a3 \uff21\uff22\uff23\n"
             "\x0b\x1c\x1f\x0c\n").encode("utf-8") + (
             b"bad \xff bytes\xc4 \xe2\x84 \xc4\xb0\xb0 here\r\n"
             b"\xff\n\xc2\x85\n\x00\n"
             b"no final newline")


@pytest.mark.parametrize("nworker", [1, 2, 3, 4])
def test_documents_edge_cases_every_split(tmp_path, nworker):
    files = [_write(tmp_path, "a.txt", DOCUMENTS), _write(tmp_path, "b.txt", b"end END\n\nend"),
             _write(tmp_path, "c.txt", b""), _write(tmp_path, "d.txt", b"\n\n")]
    _check_documents(files, nworker)
    _check_documents(files, nworker, chunk_bytes=5)
    _check_documents(files, nworker, min_length=1)


def test_documents_many_distinct(tmp_path):
    """Enough distinct words (and long ones) to grow the tables in the middle of a line."""
    rng = np.random.default_rng(7)
    letters = np.array(list("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"))
    vocab = ["".join(rng.choice(letters, 3 + j % 40)) for j in range(45_000)] + ["x" * 3_000_000]
    picks = rng.integers(0, len(vocab) - 1, 150_000)
    lines = [" ".join(vocab[p] for p in picks[i:i + 500]) for i in range(0, len(picks), 500)]
    lines.insert(100, vocab[-1])
    _check_documents([_write(tmp_path, "m.txt", "\n".join(lines).encode())], 2)


_doc_alphabet = st.sampled_from(list("abcXYZ \t\n\r,.-_19") + ["\u0130", "\u212a", "\u00a0", "\u3000", "\u00e9",
                                                                 "\u2028", "\u0085", "\x0b", "\x1c"])


@FAST
@given(content=st.binary(max_size=200) | st.lists(_doc_alphabet, max_size=120).map(lambda t: "".join(t).encode()),
       nworker=st.integers(1, 4), chunk_bytes=st.sampled_from([1, 11, 1 << 20]), min_length=st.integers(1, 4))
def test_documents_random_text(tmp_path, content, nworker, chunk_bytes, min_length):
    _check_documents([_write(tmp_path, "r.txt", content)], nworker, chunk_bytes, min_length)
