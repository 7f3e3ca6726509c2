"""Where the tests find data that does not ship with the repository (the benchmarks' published files, MathVista
model outputs): ``$MSSR_SHARED_DATA`` if set, else ``../shared/data`` beside the repository root (the clone).

Tests that need it skip, with the reason, when it is not there: mark a module or test with
:func:`requires`, or call :func:`path_or_skip` inside a test.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ENV_VAR = "MSSR_SHARED_DATA"
REPO_ROOT = Path(__file__).resolve().parent.parent


def shared_data_root() -> Path:
    """``$MSSR_SHARED_DATA``, else ``<repository root>/../shared/data``; it may not exist."""
    env = os.environ.get(ENV_VAR)
    return Path(env).expanduser() if env else REPO_ROOT.parent / "shared" / "data"


def find(*parts: str) -> Path | None:
    """``shared_data_root() / parts`` if it exists, else ``None``."""
    path = shared_data_root().joinpath(*parts)
    return path if path.exists() else None


def why_missing(*parts: str) -> str:
    where = shared_data_root().joinpath(*parts)
    return (
        f"shared data not found: {where} (set ${ENV_VAR} to the shared data directory, or put it at "
        "../shared/data beside the repository)"
    )


def requires(*parts: str) -> pytest.MarkDecorator:
    """A skip mark for tests that need ``parts`` under the shared data directory."""
    return pytest.mark.skipif(find(*parts) is None, reason=why_missing(*parts))


def path_or_skip(*parts: str) -> Path:
    """The shared data path ``parts``, or skip the calling test with the reason."""
    path = find(*parts)
    if path is None:
        pytest.skip(why_missing(*parts))
    return path
