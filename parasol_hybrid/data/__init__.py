"""Input loaders and partitioners: files → lines → parsed records → a worker's share.

Typical use on one worker::

    files = expand_inputs("data/ratings/*.tsv")
    ratings = scan_ratings(files, worker, nworker)          # linesplit, compiled (parse_ratings: the Python spec)
    rows = scan_libsvm(files, worker, nworker)              # the same for libsvm
    # a collective of the workers' communicator: this worker's share by id, parsed once and exchanged
    share = load_share(comm, files, "fmap")

The Python parsers (``parse_ratings``, ``parse_libsvm``, ``parse_regression``, ``count_words`` over
``read_lines``, in :mod:`.parsers`) define the semantics; the compiled ones (``scan_*``, a module each)
give the same results from the bytes of the worker's range (:mod:`.chunks`), with the byte-level kernels
of :mod:`.bytescan`, the exact decimals of :mod:`.numbers` and the hash and id table of :mod:`.idhash`.
"""

from parasol_hybrid.data.files import expand_inputs
from parasol_hybrid.data.lines import Line, byte_ranges, read_all_lines, read_lines
from parasol_hybrid.data.parsers import (
    BAD_LINE_POLICIES,
    LibSVM,
    Ratings,
    count_words,
    parse_libsvm,
    parse_ratings,
    parse_regression,
    tokenize,
)
from parasol_hybrid.data.chunks import Chunk, read_chunks
from parasol_hybrid.data.scan_ratings import ScannedRatings, scan_ratings
from parasol_hybrid.data.libsvm import scan_libsvm
from parasol_hybrid.data.words import scan_words, word_keys
from parasol_hybrid.data.documents import Documents, scan_documents
from parasol_hybrid.data.share import RatingsShare, load_share
from parasol_hybrid.data.partition import (
    PATTERNS,
    grid_shape,
    owner,
    partition,
    select,
    stable_hash,
)

__all__ = [
    "expand_inputs",
    "Line",
    "byte_ranges",
    "read_lines",
    "read_all_lines",
    "BAD_LINE_POLICIES",
    "Ratings",
    "LibSVM",
    "parse_ratings",
    "parse_libsvm",
    "tokenize",
    "count_words",
    "PATTERNS",
    "stable_hash",
    "grid_shape",
    "owner",
    "select",
    "partition",
    "Chunk",
    "read_chunks",
    "ScannedRatings",
    "scan_ratings",
    "scan_libsvm",
    "scan_words",
    "word_keys",
    "scan_documents",
    "Documents",
    "parse_regression",
    "RatingsShare",
    "load_share",
]
