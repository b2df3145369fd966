"""The package's public names: every exception users may catch is importable from the top level."""

import parasol_hybrid
from parasol_hybrid import errors


def test_every_error_is_exported():
    for name in errors.__all__:
        assert name in parasol_hybrid.__all__, f"{name} missing from parasol_hybrid.__all__"
        assert getattr(parasol_hybrid, name) is getattr(errors, name)


def test_checkpoint_error_is_a_parasol_error():
    from parasol_hybrid import CheckpointError, ParasolError
    assert issubclass(CheckpointError, ParasolError)


def test_lazy_names_resolve():
    for name in parasol_hybrid.__all__:
        assert getattr(parasol_hybrid, name) is not None
