"""The server settings `make run` serves with (.streamlit/config.toml), as Streamlit itself reads them."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _option(name: str) -> str:
    code = ("from streamlit import config; config.get_config_options(force_reparse=True); "
            f"print(config.get_option({name!r}))")
    r = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    return r.stdout.strip()


def test_no_full_garbage_collection_after_every_script_run():
    """Streamlit's default collects all generations after every script run and fragment rerun (~0.2 s
    with torch loaded): a watching session's live curves (every 0.5 s) then held up every other page."""
    assert _option("runner.postScriptGC") == "False"


def test_the_server_listens_on_this_machine_only_and_shows_no_tracebacks():
    assert _option("server.address") == "127.0.0.1"
    assert _option("client.showErrorDetails") == "none"
