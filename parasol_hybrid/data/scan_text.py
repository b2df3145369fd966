"""The compiled scanners of text inputs, in one import (each lives in a module of its own).

- :func:`scan_libsvm` (:mod:`.libsvm`): libsvm rows, 0/1 labels or real targets
  (:func:`parse_regression`, :mod:`.parsers`, is the Python reference of the latter);
- :func:`scan_words`, :func:`word_keys` (:mod:`.words`): word counts, and the words' 63-bit keys;
- :func:`scan_documents`, :class:`Documents` (:mod:`.documents`): LDA's documents as word codes.

Each reads a worker's byte range as whole-line chunks (:mod:`.chunks`) and gives what the Python parser
of :mod:`.parsers` gives over :func:`~parasol_hybrid.data.lines.read_lines`.
"""

from parasol_hybrid.data.parsers import parse_regression
from parasol_hybrid.data.documents import Documents, scan_documents
from parasol_hybrid.data.libsvm import scan_libsvm
from parasol_hybrid.data.words import scan_words, word_keys

__all__ = ["scan_libsvm", "parse_regression", "scan_words", "word_keys", "Documents", "scan_documents"]
