"""Output of the commands (every ``--json`` of ``python -m mtlrec``): strict JSON (numpy values as plain numbers and lists, NaN and
infinities as null -- never an invalid ``NaN`` token), errors as a message on stderr and, with
``--json``, as ``{"error": ...}`` on stdout, and offline figure files (`mtlrec.runs.report.figures_page`)."""
from __future__ import annotations

import json
import sys

from mtlrec.diskio import json_ready  # noqa: F401 - the CLI's JSON, also imported from here


def dumps(obj) -> str:
    """One strict JSON document (`json_ready`)."""
    return json.dumps(json_ready(obj), allow_nan=False)


def fail(command: str, message, as_json: bool, code: int = 2) -> int:
    """Say what failed (stderr; with ``as_json`` also ``{"error": ...}`` on stdout) and return ``code``."""
    print(f"mtlrec {command}: {message}", file=sys.stderr)
    if as_json:
        print(dumps({"error": str(message)}))
    return code


def parse_weights(s: str | None):
    """The fusion weights of ``--weights`` ("click=1,rating=0.5") as {task: weight}; None when not given
    (``recommend``, ``explain`` and ``score`` take the same flag)."""
    from mtlrec.errors import DataError
    if not s:
        return None
    out = {}
    for part in s.split(","):
        if "=" not in part:
            raise DataError(f"bad --weights entry '{part}'", fix="write task=weight pairs, e.g. click=1,rating=0.5")
        k, v = part.split("=", 1)
        try:
            out[k.strip()] = float(v)
        except ValueError:
            raise DataError(f"bad weight '{v}' for task '{k}'", fix="weights are numbers, e.g. 0.5") from None
    return out


def add_common(p, html: str | None = None) -> None:
    """The arguments every explanation command has: --run, --seed, --json (and --html FILE: ``html``
    says what it writes)."""
    p.add_argument("--run", required=True, help="run folder written by 'python -m mtlrec train'")
    p.add_argument("--seed", type=int, default=0, help="seed of the samples")
    if html:
        p.add_argument("--html", default=None, metavar="FILE", help=f"also write {html} to this HTML file")
    p.add_argument("--json", action="store_true", help="print one JSON object")


def serve(command: str, as_json: bool, work, show) -> int:
    """Run ``work()`` (-> the command's JSON object) under `attempt`; print the object as strict JSON
    with ``as_json``, else ``show(obj)`` as text. The exit status."""
    doc, code = attempt(command, as_json, work)
    if code is not None:
        return code
    if as_json:
        print(dumps(doc))
    else:
        show(doc)
    return 0


def attempt(command: str, as_json: bool, work):
    """``(work(), None)``, or ``(None, exit status)`` after saying what failed -- never a traceback:
    a DataError / TrainingError / ValueError / KeyError (an unknown user, item, group, task, class, a
    bad setting) or a file that cannot be written: 2; anything else: 1."""
    from mtlrec.errors import DataError, TrainingError
    try:
        return work(), None
    except (DataError, TrainingError, ValueError, KeyError) as e:
        return None, fail(command, e, as_json)
    except OSError as e:
        return None, fail(command, f"cannot write {e.filename}: {e.strerror}", as_json)
    except Exception as e:  # noqa: BLE001 - say what failed
        return None, fail(command, f"it failed: {e.__class__.__name__}: {e}", as_json, code=1)


def load_run(command: str, path):
    """The run folder ``path`` (`mtlrec.runs.load.load_run`); an interrupted, failed or still running run's
    warning goes to stderr (its saved model is still used)."""
    from mtlrec.runs.load import load_run as load
    run = load(path)
    if run.warning:
        print(f"mtlrec {command}: warning: {run.warning}", file=sys.stderr)
    return run


def write_figures(path: str, title: str, figures: list, notes: list[str] = ()) -> int:
    """Write the figures to ``path`` as one self-contained HTML page; its size in bytes."""
    from mtlrec.runs.report import figures_page
    from mtlrec.diskio import write_text
    p = write_text(path, figures_page(title, figures, list(notes)))
    return p.stat().st_size
