"""The container tests' options: the images `.ci/containers` built."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from compose import FAILED


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--image", help="the image built from this tree (stoplight:VERSION)")
    parser.addoption("--previous-image", help="the previous release's image, for the upgrade")


@pytest.fixture(scope="session")
def image(request: pytest.FixtureRequest) -> str:
    return _option(request, "--image")


@pytest.fixture(scope="session")
def previous_image(request: pytest.FixtureRequest) -> str:
    return _option(request, "--previous-image")


def _option(request: pytest.FixtureRequest, name: str) -> str:
    value = request.config.getoption(name)
    if not value:
        pytest.skip(f"no {name}: `bash .ci/containers` builds the images and runs these tests")
    return value


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Iterator[None]:
    # Kept on the test for the project fixture, which shows the containers' logs on failure.
    report = yield
    if report.failed:
        item.stash[FAILED] = True
    return report
