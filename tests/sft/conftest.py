"""Skip ``slow`` tests of this directory unless they are asked for with ``-m slow`` (the project's
convention; the root configuration does not exclude them yet)."""

import pytest


def pytest_collection_modifyitems(config, items):
    if "slow" in (config.getoption("markexpr") or ""):
        return
    skip = pytest.mark.skip(reason="slow: run with -m slow")
    for item in items:
        if "slow" in item.keywords and str(item.fspath).startswith(str(config.rootpath / "tests" / "sft")):
            item.add_marker(skip)
