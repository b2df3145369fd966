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


def test_the_readme_lists_every_environment_variable():
    from pathlib import Path
    from parasol_hybrid.config import ENVIRONMENT
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    missing = [name for name in ENVIRONMENT if f"| `{name}` |" not in readme]
    assert missing == [], f"README.md's environment table lacks {missing}"
