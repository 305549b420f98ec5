"""A run (zip or folder) whose dataset is in a format this mtlrec cannot read says which format
(issue 21, item 20) -- not "arrays.npz is missing", the file an older format would have had."""
from __future__ import annotations

import io
import json
import zipfile

import pytest

from mtlrec.errors import DataError

NEWER = "mtlrec-dataset/4"


def _files(fmt: str, extra: dict | None = None) -> dict[str, bytes]:
    doc = {"format": fmt, "fields": [], "labels": [], "splits": ["train"], "arrays": {"a0": ["user_ids"]}}
    model = json.dumps({"arch": "mmoe", "hparams": {}, "tasks": [{"name": "click", "type": "binary", "label": "click"}]})
    return {"config.json": b"{}", "model.json": model.encode(), "model.pt": b"weights", "status.json": b'{"status": "finished"}',
            "dataset/dataset.json": json.dumps(doc).encode(), "dataset/arrays/a0.npy": b"x", **(extra or {})}


def _zip(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for n, data in files.items():
            z.writestr(n, data)
    return buf.getvalue()


@pytest.mark.parametrize("extra", [None, {"dataset/arrays/index.bin": b"new layout"}])
def test_a_zip_of_a_newer_format_names_the_format(tmp_path, extra):
    from mtlrec.runs.archive import import_zip
    root = tmp_path / "runs"
    with pytest.raises(DataError) as ei:
        import_zip(_zip(_files(NEWER, extra)), root, source="newer.zip")
    msg = str(ei.value)
    assert NEWER in msg and "cannot read" in msg and "arrays.npz" not in msg, msg
    assert ei.value.file == "newer.zip" and "version" in ei.value.fix
    assert not root.exists() or not any(root.iterdir())              # nothing left behind


def test_a_run_folder_of_a_newer_format_names_the_format(tmp_path):
    from mtlrec.dataset import PreparedDataset
    from mtlrec.runs.load import load_run
    d = tmp_path / "run"
    for name, data in _files(NEWER).items():
        (d / name).parent.mkdir(parents=True, exist_ok=True)
        (d / name).write_bytes(data)
    for load in (lambda: load_run(d), lambda: PreparedDataset.load(d / "dataset")):
        with pytest.raises(DataError) as ei:
            load()
        assert NEWER in str(ei.value) and "arrays.npz" not in str(ei.value), str(ei.value)
