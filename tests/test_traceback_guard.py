"""One failing test can never stop the suite: a traceback entry without a line number (which made
pytest die with INTERNALERROR on another machine) is reported as an ordinary failure."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

BAD_TEST = '''
import sys, types

def test_traceback_without_line_number():
    try:
        raise AssertionError("boom")
    except AssertionError as e:
        # what an asynchronously raised exception looks like: an entry whose tb_lineno is None
        tb = types.TracebackType(e.__traceback__, sys._getframe(), 10_000, -1)
        assert tb.tb_lineno is None
        raise e.with_traceback(tb)

def test_runs_afterwards():
    assert True
'''


def _run(tmp_path: Path, with_guard: bool) -> subprocess.CompletedProcess:
    (tmp_path / "test_bad.py").write_text(BAD_TEST)
    (tmp_path / "conftest.py").write_text("from _traceback_guard import pytest_runtest_makereport  # noqa\n"
                                          if with_guard else "")
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).parent))
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tmp_path)],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)


def test_unformattable_failure_is_reported_and_the_suite_goes_on(tmp_path):
    out = _run(tmp_path, with_guard=True)
    assert "INTERNALERROR" not in out.stdout + out.stderr, out.stdout[-3000:]
    assert "1 failed, 1 passed" in out.stdout, out.stdout[-3000:]
    assert "AssertionError: boom" in out.stdout


def test_without_the_guard_pytest_dies(tmp_path):
    """The case is real: without the hook this pytest stops with INTERNALERROR."""
    out = _run(tmp_path, with_guard=False)
    assert "INTERNALERROR" in out.stdout + out.stderr
