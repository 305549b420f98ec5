"""What a message may show of the server: no absolute file paths (issue 21, item 20).

Errors name the file they are about -- often as a full path of the server (``/srv/app/runs/
20240101-mmoe/metrics.json``, ``/tmp/...``). A visitor of the app needs the file's name, not where
the server keeps it. `public_message` rewrites every absolute path in a message:

* inside the runs root: ``runs/20240101-mmoe/metrics.json`` (from the runs folder's own name);
* inside the workspaces root: ``workspace/data/interactions.csv`` (the workspace id, a secret
  like a password, is left out);
* inside the server's working folder: relative to it (``sample_data/interactions.csv``);
* anywhere else: the file's name alone (``interactions.csv``).

URLs (``https://host/a/b``), fractions and ratios (``3/4``) and relative paths are left as they are.
"""
from __future__ import annotations

import os
import re
from pathlib import Path

# an absolute path: "/" (not after a word character, ":", "/", "." or "~") then one or more
# components of non-space characters; trailing sentence punctuation is not part of it
_ABS = re.compile(r"(?<![\w:/.~\\-])/(?:[^\s/'\"`<>|]+/)*[^\s/'\"`<>|]+")
_TRAIL = ".,;:)]}!?"
_WS_ID = re.compile(r"[0-9a-f]{32}")


def _roots() -> list[tuple[str, str]]:
    """(absolute prefix, what it becomes), longest first: the runs root, the workspaces root, the
    working folder -- each as given and resolved (symbolic links)."""
    from mtlrec.runs.library import runs_root
    from mtlrec.app.workspace import workspaces_root
    out: list[tuple[str, str]] = []
    for root, shown in ((runs_root(), None), (workspaces_root(), "workspace"), (Path.cwd(), "")):
        for p in {os.path.abspath(root), os.path.realpath(root)}:
            out.append((p.rstrip("/"), Path(p).name if shown is None else shown))
    return sorted(out, key=lambda r: len(r[0]), reverse=True)


def _inside(rest: str, shown: str) -> str:
    """A path below a root, as shown: the workspace id dropped, the root's shown name in front."""
    parts = [x for x in rest.split("/") if x]
    if shown == "workspace" and parts and _WS_ID.fullmatch(parts[0]):
        parts = parts[1:]
    return "/".join(([shown] if shown else []) + parts) or (shown or ".")


def public_path(path) -> str:
    """One path as a message may show it (see the module)."""
    s = str(path)
    if not os.path.isabs(s):
        return s
    for prefix, shown in _roots():
        if s == prefix or s.startswith(prefix + "/"):
            return _inside(s[len(prefix):], shown)
    return Path(s).name or s


def public_message(text) -> str:
    """``text`` with every absolute server path rewritten (see the module); None -> ""."""
    if text is None:
        return ""
    s = str(text)
    for prefix, shown in _roots():          # the known roots first: their paths may hold spaces
        if prefix and prefix != "/":
            s = re.sub(re.escape(prefix) + r"(?=/|\b|$)((?:/[^\s'\"`<>|]*)*)",
                       lambda m, sh=shown: _inside(m.group(1).rstrip(_TRAIL), sh) + _tail(m.group(1)), s)

    def other(m: re.Match) -> str:
        p = m.group(0)
        core = p.rstrip(_TRAIL)
        return (Path(core).name or core) + p[len(core):]
    return _ABS.sub(other, s)


def _tail(matched: str) -> str:
    """The sentence punctuation a path match swallowed at its end (put back after it)."""
    return matched[len(matched.rstrip(_TRAIL)):]
