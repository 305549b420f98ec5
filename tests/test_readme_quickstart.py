"""The README's Python quickstart runs as written, so that it cannot rot.

The first ```python block under the "Python quickstart" heading of README.md is run as a script in
a fresh interpreter: in a temporary working directory holding a copy of the shipped sample data, with
the repository on ``sys.path``, no GPU visible and one CPU thread. It must train a run (a finished run folder) and
print recommendations (items of the sample catalogue).
"""
from __future__ import annotations

import csv
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HEADING = "## Python quickstart"
MARK = "QUICKSTART-RESULT "

# runs the quickstart as a script, then reports what it left in its namespace
DRIVER = f"""
import json, runpy
ns = runpy.run_path("quickstart.py", run_name="__main__")
result = ns.get("result")
print({MARK!r} + json.dumps({{
    "status": getattr(result, "status", None),
    "run_dir": str(getattr(result, "run_dir", "")),
    "device": getattr(result, "device", None),
    "rec": ns.get("rec"),
}}, default=str))
"""


def quickstart_code(readme: str) -> str:
    """The first ```python block of the quickstart section (before the next heading)."""
    at = readme.find("\n" + HEADING + "\n")
    assert at >= 0, f"README.md has no '{HEADING}' heading"
    section = readme[at + len(HEADING) + 2:]
    nxt = re.search(r"^#{1,2} ", section, re.M)
    section = section[:nxt.start()] if nxt else section
    block = re.search(r"^```python\n(.*?)^```\s*$", section, re.M | re.S)
    assert block, f"no ```python block under '{HEADING}' in README.md"
    return block.group(1)


def test_quickstart_is_short_and_uses_the_public_entry_points():
    code = quickstart_code((ROOT / "README.md").read_text(encoding="utf-8"))
    assert len(code.strip().splitlines()) <= 10, code
    assert re.search(r"^from mtlrec import ", code, re.M), code
    compile(code, "README quickstart", "exec")


def test_readme_quickstart_trains_and_recommends(tmp_path):
    code = quickstart_code((ROOT / "README.md").read_text(encoding="utf-8"))
    shutil.copytree(ROOT / "sample_data", tmp_path / "sample_data")
    (tmp_path / "quickstart.py").write_text(code, encoding="utf-8")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
               CUDA_VISIBLE_DEVICES="", MTLREC_TEXT_FEATURES="0", OMP_NUM_THREADS="1")
    proc = subprocess.run([sys.executable, "-c", DRIVER], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    lines = proc.stdout.splitlines()
    report = json.loads(next(ln for ln in lines if ln.startswith(MARK))[len(MARK):])

    # it trained a run: a finished run folder inside the temporary directory, on the CPU
    assert report["status"] == "finished", report
    assert report["device"] == "cpu", report
    run_dir = (tmp_path / report["run_dir"]).resolve()
    assert tmp_path.resolve() in run_dir.parents, run_dir
    for name in ("model.pt", "metrics.json", "config.json", "status.json"):
        assert (run_dir / name).is_file(), name
    assert json.loads((run_dir / "status.json").read_text())["status"] == "finished"
    assert json.loads((run_dir / "metrics.json").read_text())["test"]

    # it recommended: the last recommendation is a sample item with a score, and the printed lines
    # after the metrics line name sample items
    with open(ROOT / "sample_data" / "items.csv", newline="", encoding="utf-8") as fh:
        items = {row["item_id"] for row in csv.DictReader(fh)}
    rec = report["rec"]
    assert isinstance(rec, dict) and rec["item"] in items and isinstance(rec["score"], float), rec
    printed = [ln.split()[0] for ln in lines if ln and not ln.startswith(MARK) and ln.split()[0] in items]
    assert len(printed) >= 1, proc.stdout[-2000:]
