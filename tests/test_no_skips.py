"""The no-silent-skips hook of ``tests/conftest.py``: a tiny pytest run in a subprocess, with
that conftest loaded as a plugin, must fail when a test or a module skips for a reason not in
``ALLOWED_SKIP_REASONS`` and pass when nothing skips (or the reason is allowed)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import tests.conftest as root_conftest

REPO = Path(__file__).resolve().parents[1]

PASSING = "def test_passes():\n    assert True\n"
SKIPPED = (
    "import pytest\n\n"
    "def test_passes():\n    assert True\n\n"
    "def test_skips():\n    pytest.skip('node is not installed')\n"
)
SKIPIF = (
    "import pytest\n\n"
    "@pytest.mark.skipif(True, reason='no chromium here')\n"
    "def test_skipped_by_mark():\n    assert True\n"
)
MODULE_SKIP = (
    "import pytest\n\npytest.skip('whole module', allow_module_level=True)\n\n"
    "def test_never_runs():\n    assert True\n"
)
XFAIL = (
    "\nimport pytest\n\n@pytest.mark.xfail(reason='known', strict=True)\n"
    "def test_expected_failure():\n    assert False\n"
)


def run_pytest(tmp_path: Path, source: str) -> subprocess.CompletedProcess[str]:
    """Run pytest on one test file in ``tmp_path`` with the repository's conftest as a plugin."""
    return run_with_plugin(tmp_path, source, "tests.conftest")


def run_with_plugin(tmp_path: Path, source: str, plugin: str) -> subprocess.CompletedProcess[str]:
    """Run pytest (no third-party plugins, rootdir ``tmp_path``) on ``source`` with ``plugin``."""
    test_file = tmp_path / "test_sample.py"
    test_file.write_text(source)
    command = [sys.executable, "-m", "pytest", "-q", "-p", plugin, "--rootdir", str(tmp_path)]
    return subprocess.run(
        [*command, str(test_file)],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": f"{REPO}{os.pathsep}{tmp_path}"}
        | {"PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_a_run_without_skips_passes(tmp_path: Path) -> None:
    """Passing tests and an expected failure (not a skip) leave the run green."""
    done = run_pytest(tmp_path, PASSING + XFAIL)
    assert done.returncode == pytest.ExitCode.OK, done.stdout + done.stderr
    assert "1 passed, 1 xfailed" in done.stdout


def test_a_skipped_test_fails_the_run(tmp_path: Path) -> None:
    """``pytest.skip`` in a test and a ``skipif`` mark each fail, named, with their reason."""
    done = run_pytest(tmp_path, SKIPPED + SKIPIF.removeprefix("import pytest\n"))
    assert done.returncode == pytest.ExitCode.TESTS_FAILED, done.stdout + done.stderr
    assert "1 failed, 1 passed, 1 error" in done.stdout  # a skipif skips in setup: an error
    assert "skipped" not in done.stdout.splitlines()[-1]
    assert "SkipNotAllowed: skipped ('node is not installed')" in done.stdout
    assert "SkipNotAllowed: skipped ('no chromium here')" in done.stdout


def test_a_skipped_module_fails_the_run(tmp_path: Path) -> None:
    done = run_pytest(tmp_path, MODULE_SKIP)
    assert done.returncode != pytest.ExitCode.OK, done.stdout + done.stderr
    assert "SkipNotAllowed" in done.stdout
    assert "whole module" in done.stdout


def test_an_allowed_reason_may_skip(tmp_path: Path) -> None:
    """The allow-list is the only way through: the same skip passes once its reason is listed
    (the subprocess imports a copy of the conftest whose list names it)."""
    plugin = tmp_path / "allowing_conftest.py"
    plugin.write_text(
        "from tests.conftest import *  # noqa: F403\n"
        "import tests.conftest as base\n"
        "base.ALLOWED_SKIP_REASONS = frozenset({'node is not installed'})\n"
    )
    done = run_with_plugin(tmp_path, SKIPPED, "allowing_conftest")
    assert done.returncode == pytest.ExitCode.OK, done.stdout + done.stderr
    assert "1 passed, 1 skipped" in done.stdout


def test_no_reason_is_allowed_on_this_project() -> None:
    """Every test can run on a fresh machine after `make test`'s setup: the list stays empty."""
    assert not root_conftest.ALLOWED_SKIP_REASONS
