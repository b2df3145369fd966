"""Input loaders and partitioners: files → lines → parsed records → a worker's share.

Typical use on one worker::

    files = expand_inputs("data/ratings/*.tsv")
    ratings = parse_ratings(read_lines(files, worker, nworker))      # linesplit
    # or read everything and keep this worker's share by id:
    ratings = partition(parse_ratings(read_all_lines(files)), "fmap", worker, nworker)
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
    tokenize,
)
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
]
