"""A non-editable install (`pip install .`) carries everything the app reads from its package."""

from __future__ import annotations

import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
NOT_SOURCE = shutil.ignore_patterns(
    ".venv", ".git", "build", "dist", "*.egg-info", "__pycache__", ".*_cache", ".stoplight"
)
SERVE_SETUP = """
from stoplight.settings import Settings
from stoplight.web import create_app, web_redis
from stoplight.web.setup import setup_link
import stoplight.web
print(stoplight.web.__file__)
settings = Settings()
link = setup_link(settings, web_redis(settings.redis_url)).removeprefix(settings.base_url)
response = create_app(settings).test_client().get(link)
print(response.status_code)
print(response.text)
"""


@pytest.fixture(scope="module")
def installed_python(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv with the package installed from a copy of the source tree, not linked.

    The dependencies come from this environment's site-packages (no network); the package
    itself is built and installed as a wheel, as `pip install .` does.
    """
    work = tmp_path_factory.mktemp("install")
    source = work / "source"
    shutil.copytree(ROOT, source, symlinks=True, ignore=NOT_SOURCE)
    venv = work / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", venv], check=True)
    python = venv / "bin" / "python"
    site = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    # A path line, not a site directory: the editable install's hook here is not run.
    Path(site, "dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run(
        [sys.executable, "-m", "pip", "--python", python, "install", "--quiet", "--no-deps",
         "--no-build-isolation", "--no-index", "--ignore-installed", source],
        check=True,
        cwd=work,
    )  # fmt: skip
    shutil.rmtree(source)
    return python


def test_fresh_install_shows_the_registration_form(installed_python, redis_server, tmp_path):
    elsewhere = tmp_path / "empty"
    elsewhere.mkdir()
    shown = subprocess.run(
        [installed_python, "-c", SERVE_SETUP],
        check=True,
        capture_output=True,
        text=True,
        cwd=elsewhere,
        env={"REDIS_URL": redis_server.url, "PATH": "/usr/bin:/bin"},
    ).stdout
    module, status, page = shown.split("\n", 2)
    assert not Path(module).is_relative_to(ROOT)  # the installed copy, not the source tree
    assert status == "200"
    assert "Register the GitHub App" in page
    assert "&#34;name&#34;: &#34;Stoplight&#34;" in page
