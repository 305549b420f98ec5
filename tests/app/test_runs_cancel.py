"""AppTest: a run that trains in another process of this machine (another server's worker, a
command line) is cancelled from the Runs page (issue 21, item 17); a run trained inside another
app server's own process cannot be, and the page says where it can."""
from __future__ import annotations

import subprocess
import sys

from test_orphan_workers import _running_status
from test_pages import no_exception, plain
from test_runs_page import runs_page

SLEEPER = ("import signal, sys, time\nsignal.signal(signal.SIGTERM, lambda *a: sys.exit(7))\n"
           "print('ready', flush=True)\ntime.sleep(600)")


def _select(at, prefix: str):
    label = next(o for o in at.multiselect(key="runs_selected").options if o.startswith(prefix))
    at.multiselect(key="runs_selected").set_value([label]).run()
    no_exception(at, f"{prefix} selected")


def test_cancel_a_run_of_another_process_from_the_runs_page(runs_dir, local_runs):
    cli, server = (subprocess.Popen([sys.executable, "-c", SLEEPER], stdout=subprocess.PIPE, text=True)
                   for _ in range(2))
    try:
        assert cli.stdout.readline().strip() == "ready" and server.stdout.readline().strip() == "ready"
        _running_status(runs_dir / "20260102-000000-cli", cli.pid, cancel="sigterm")
        _running_status(runs_dir / "20260102-000001-elsewhere", server.pid)
        at = runs_page()
        _select(at, "20260102-000001-elsewhere")
        assert at.button(key="runs_cancel").disabled
        assert any("another app server's own process" in plain(c.value) for c in at.caption)
        _select(at, "20260102-000000-cli")
        assert not at.button(key="runs_cancel").disabled
        at.button(key="runs_cancel").click().run()
        no_exception(at, "cancel")
        assert cli.wait(30) == 7                      # the process training it was told to stop
        assert server.poll() is None                  # the other one never
    finally:
        for p in (cli, server):
            if p.poll() is None:
                p.kill()
