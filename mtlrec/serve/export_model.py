"""A run's model as a self-contained file for a service: TorchScript or ONNX, with a JSON sidecar.

``export_model(run, "onnx", "model.onnx")`` writes ``model.onnx`` and ``model.onnx.json``. The
model (`ExportedModel`: mtlrec's own model behind a wrapper that takes plain tensors) takes the
encoded inputs, one tensor per input in the sidecar's ``inputs`` order, batch first with a free
batch size, and returns a tuple of logits, one per task in the sidecar's ``outputs`` order -- the
same numbers as ``run.model(features)`` (`mtlrec.serve.export_schema` says what each input and
output is and how raw values are encoded).

How: TorchScript by tracing (`torch.jit.trace`) the model in eval mode; ONNX (opset 17) with
torch's TorchScript-based exporter (``dynamo=False``): measured on torch 2.13 (tiny test models, a
shared 2-core machine), it exports every architecture and history encoder in 0.2-3.5 s and
onnxruntime reproduces the logits to 2e-6 (AITM's conditional logit included, whose ``expm1`` the
exporter lacks: it is given one computed in float64 here); the ``dynamo=True`` exporter took
8.5-21.8 s per model and left AITM's logits 1.5e-2 away (docs/export.md). ONNX needs the optional
packages of requirements-extras.txt (onnx; onnxruntime to check the file), imported only here.
"""
from __future__ import annotations

import copy
import io
import json
import warnings
from pathlib import Path

from torch import nn

from mtlrec.errors import DataError
from mtlrec.serve.export_schema import feature_keys, input_key, sidecar_document

FORMATS = ("torchscript", "onnx")
ONNX_OPSET = 17
EXTRAS = "install the optional packages: pip install -r requirements-extras.txt"


class ExportedModel(nn.Module):
    """``model`` taking plain tensors (in ``keys`` order: `feature_keys`) and returning a tuple of
    its logits in task order."""

    def __init__(self, model, keys):
        super().__init__()
        self.model = model
        self.keys = list(keys)

    def forward(self, *inputs):
        out = self.model(dict(zip(self.keys, inputs)))
        return tuple(out[name] for name in self.model.task_names)


def sidecar_path(out) -> Path:
    """Where the sidecar of a model written to ``out`` goes: ``out`` + ".json"."""
    p = Path(out)
    return p.with_name(p.name + ".json")


def first_split(ds) -> str:
    """The test split, else the first of valid, train with rows."""
    split = next((s for s in ("test", "valid", "train") if s in ds.rows and ds.n_rows(s)), None)
    if split is None:
        raise DataError("the run's dataset has no rows to trace the model with", fix="train the run on data with rows")
    return split


def example_inputs(run, keys, n: int = 3) -> tuple:
    """A few encoded rows of the run (its first split with rows) as the exporters' example, on CPU."""
    import torch
    split = first_split(run.dataset)
    feats, _ = run.dataset.to_device("cpu").batch(split, torch.arange(n) % run.dataset.n_rows(split))
    return tuple(feats[k].contiguous() for k in keys)


def _check_target(fmt: str, out) -> Path:
    if fmt not in FORMATS:
        raise DataError(f"unsupported export format '{fmt}'", fix=f"use one of: {', '.join(FORMATS)}")
    p = Path(out)
    if p.is_dir():
        raise DataError("the output is a folder", file=str(p), fix="give a file name, e.g. model.onnx")
    if not p.parent.is_dir():
        raise DataError("the output's folder does not exist", file=str(p.parent), fix="create it, or write elsewhere")
    return p


def _output_names(model) -> list[str]:
    names = [input_key(n) for n in model.task_names]
    if len(set(names)) != len(names):
        raise DataError(f"task names {model.task_names} give clashing output names {names}",
                        fix="rename the tasks so that they differ in letters, digits or '_'")
    return names


def export_model(run, fmt: str, out) -> dict:
    """Write ``run``'s model to ``out`` in ``fmt`` ("torchscript" or "onnx") and its sidecar to
    `sidecar_path` (``out`` + ".json"); the summary ({"model", "sidecar", "format", "inputs",
    "outputs", "bytes"}). The run's own model is left as it is (a CPU copy is exported)."""
    import torch
    from mtlrec.diskio import write_bytes, write_text
    path = _check_target(fmt, out)
    model = copy.deepcopy(run.model).cpu().eval().requires_grad_(False)   # a service's outputs need no grad
    fields = model.input.fields
    keys = feature_keys(fields)
    wrapper = ExportedModel(model, keys).eval()
    outputs = _output_names(model)
    example = example_inputs(run, keys)
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")          # the exporters' deprecation and tracer notes
        data = (_torchscript_bytes(wrapper, example) if fmt == "torchscript"
                else _onnx_bytes(wrapper, example, [input_key(k) for k in keys], outputs))
    write_bytes(path, data)
    doc = sidecar_document(run, fmt, path.name, fields)
    side = write_text(sidecar_path(path), json.dumps(doc, indent=1, allow_nan=False))
    return {"model": str(path), "sidecar": str(side), "format": fmt, "bytes": len(data),
            "inputs": [i["name"] for i in doc["inputs"]], "outputs": outputs}


def _torchscript_bytes(wrapper, example) -> bytes:
    import torch
    traced = torch.jit.trace(wrapper, example, check_trace=False)
    buf = io.BytesIO()
    torch.jit.save(traced, buf)
    return buf.getvalue()


def _expm1(g, x):
    """ONNX has no expm1: exp(x) - 1 in float64 (exact enough where AITM's log(1 - exp(x)) needs it)."""
    import torch
    one = g.op("Constant", value_t=torch.tensor(1.0, dtype=torch.float64))
    return g.op("Cast", g.op("Sub", g.op("Exp", g.op("Cast", x, to_i=11)), one), to_i=1)   # 11 double, 1 float


def _onnx_bytes(wrapper, example, inputs: list[str], outputs: list[str]) -> bytes:
    import torch
    try:
        import onnx  # noqa: F401 - the exporter writes through it
    except ImportError:
        raise DataError("ONNX export needs the 'onnx' package, which is not installed", fix=EXTRAS) from None
    torch.onnx.register_custom_op_symbolic("aten::expm1", _expm1, 9)
    buf = io.BytesIO()
    torch.onnx.export(wrapper, example, buf, input_names=inputs, output_names=outputs, dynamo=False,
                      opset_version=ONNX_OPSET, dynamic_axes={n: {0: "batch"} for n in inputs + outputs})
    return buf.getvalue()


# ---- running an exported file -------------------------------------------------------------------
def load_exported(path, fmt: str | None = None):
    """A callable ``f({input name: numpy array}) -> [numpy logits per task]`` of an exported file
    (TorchScript through torch, ONNX through onnxruntime)."""
    import numpy as np
    p = Path(path)
    fmt = fmt or json.loads(sidecar_path(p).read_text(encoding="utf-8"))["model_format"]
    if fmt == "onnx":
        try:
            import onnxruntime as ort
        except ImportError:
            raise DataError("running an ONNX model needs the 'onnxruntime' package, which is not installed",
                            fix=EXTRAS) from None
        sess = ort.InferenceSession(str(p), providers=["CPUExecutionProvider"])
        return lambda feeds: sess.run(None, feeds)
    import torch
    m = torch.jit.load(str(p), map_location="cpu")
    names = [i["name"] for i in json.loads(sidecar_path(p).read_text(encoding="utf-8"))["inputs"]]

    def run(feeds):
        with torch.no_grad():
            return [o.numpy() for o in m(*(torch.as_tensor(np.asarray(feeds[n])) for n in names))]
    return run


def check_export(run, path, rows: int = 512) -> dict:
    """The exported file's logits against ``run.model``'s on the first ``rows`` rows of the test split
    (else the first split with rows): {"split", "rows", "max_abs_diff"}."""
    import numpy as np
    import torch
    ds = run.dataset
    split = first_split(ds)
    n = min(rows, ds.n_rows(split))
    keys = feature_keys(run.model.input.fields)
    feats, _ = ds.to_device("cpu").batch(split, torch.arange(n))
    model = copy.deepcopy(run.model).cpu().eval()
    with torch.no_grad():
        ref = model(feats)
    got = load_exported(path)({input_key(k): feats[k].numpy() for k in keys})
    diff = max(float(np.abs(g - ref[t].numpy()).max()) if g.size else 0.0 for g, t in zip(got, model.task_names))
    return {"split": split, "rows": n, "max_abs_diff": diff}
