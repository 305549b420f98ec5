"""The sample data comes out byte-identical on any CPU (issue 9).

numpy chooses vectorised kernels by CPU features and OpenBLAS chooses matmul kernels by CPU and
thread count. Another machine wrote a different interactions.csv than the shipped one; here the
generator runs in subprocesses with numpy limited to its baseline kernels, with other OpenBLAS core
types and with 1 or 2 threads, and every run must write the shipped bytes.
"""
from __future__ import annotations

import json
import os
import platform
import subprocess
import sys

import numpy as np
import pytest

from _sample_files import REGENERATE, compare_dirs
from mtlrec.data import sample

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Runs in each subprocess: write the sample files through the CLI, then report what the process
# really ran with and digests of the (unshipped) synthetic generators.
CHILD = r"""
import hashlib, json, sys
import numpy as np
from mtlrec.data import sample
from mtlrec.__main__ import main
assert main(["sample", "--out", sys.argv[1]]) == 0
try:
    from numpy._core import _multiarray_umath as mu
except ImportError:
    from numpy.core import _multiarray_umath as mu
info = {"simd": [f for f in mu.__cpu_dispatch__ if mu.__cpu_features__.get(f)]}
try:
    from threadpoolctl import threadpool_info
    blas = [i for i in threadpool_info() if i.get("internal_api") == "openblas"]
    info["openblas"] = [(b.get("architecture"), b.get("num_threads")) for b in blas]
except ImportError:
    info["openblas"] = None
info["synthetic_tasks"] = sample.frames_digest(sample.synthetic_tasks(n=2000, seed=3))
info["synthetic_interactions"] = sample.frames_digest(
    *sample.synthetic_interactions(5000, n_users=300, n_items=200, seed=1))
print("RESULT " + json.dumps(info))
"""


def _dispatchable_features() -> list[str]:
    """numpy's runtime-dispatched CPU features that this CPU has (only those may be disabled)."""
    try:
        from numpy._core import _multiarray_umath as mu
    except ImportError:  # numpy 1.x
        from numpy.core import _multiarray_umath as mu
    return [f for f in mu.__cpu_dispatch__ if mu.__cpu_features__.get(f)]


def _variants() -> dict[str, dict[str, str]]:
    def threads(k):
        return {"OMP_NUM_THREADS": str(k), "OPENBLAS_NUM_THREADS": str(k)}
    features = _dispatchable_features()
    out = {"default kernels, 2 threads": threads(2)}
    if features:
        out["numpy baseline only (" + " ".join(features) + " disabled), 1 thread"] = {
            "NPY_DISABLE_CPU_FEATURES": " ".join(features), **threads(1)}
    if platform.machine().lower() in ("x86_64", "amd64"):
        out["OpenBLAS Prescott, 1 thread"] = {"OPENBLAS_CORETYPE": "Prescott", **threads(1)}
        out["OpenBLAS Nehalem, 2 threads"] = {"OPENBLAS_CORETYPE": "Nehalem", **threads(2)}
        out["OpenBLAS Sandybridge, 1 thread"] = {"OPENBLAS_CORETYPE": "Sandybridge", **threads(1)}
    return out


def _clean_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("OPENBLAS_CORETYPE", "NPY_DISABLE_CPU_FEATURES", "NPY_ENABLE_CPU_FEATURES",
                        "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")}
    env["PYTHONPATH"] = REPO_ROOT + os.pathsep + env.get("PYTHONPATH", "")
    return env


def test_sample_files_are_identical_with_other_cpu_kernels_and_thread_counts(tmp_path, sample_data_dir):
    variants = _variants()
    procs = {}
    for k, (label, extra) in enumerate(variants.items()):       # all at once: they mostly wait
        out = tmp_path / f"run{k}"
        procs[label] = (out, subprocess.Popen(
            [sys.executable, "-c", CHILD, str(out)], cwd=tmp_path, env={**_clean_env(), **extra},
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
    infos, problems = {}, []
    for label, (out, proc) in procs.items():
        text, _ = proc.communicate(timeout=300)
        assert proc.returncode == 0, f"{label}: the generator failed:\n{text[-3000:]}"
        infos[label] = json.loads(text.rsplit("RESULT ", 1)[1])
        problems += [f"[{label}] {m}" for m in
                     compare_dirs(sample.SAMPLE_FILES, sample_data_dir, out, "shipped", "this run")]
    if problems:
        pytest.fail("\n".join(problems) + f"\n(if the shipped files are merely stale: {REGENERATE})",
                    pytrace=False)

    # the settings really took effect, so the runs above used different kernels
    limited = [lab for lab in infos if lab.startswith("numpy baseline")]
    for lab in limited:
        assert infos[lab]["simd"] == [], (lab, infos[lab])
    archs = {lab: i["openblas"] for lab, i in infos.items()}
    if any(lab.startswith("OpenBLAS") for lab in infos) and infos[next(iter(infos))]["openblas"]:
        assert len({str(a[0][0]) for a in archs.values() if a}) >= 2, \
            f"no OPENBLAS_CORETYPE was honoured: {archs}"
    # the unshipped generators are reproducible too
    for key in ("synthetic_tasks", "synthetic_interactions"):
        assert len({i[key] for i in infos.values()}) == 1, {lab: i[key][:12] for lab, i in infos.items()}


# ---- the reproducible arithmetic itself ------------------------------------------------------------
def test_reproducible_exp_log_sin_match_numpy_to_float_precision():
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.normal(0, 5, 20_000), np.linspace(-700, 700, 1001), [0.0, 1.0, -1.0]])
    np.testing.assert_allclose(sample.det_exp(x), np.exp(x), rtol=1e-14, atol=0)
    u = np.concatenate([rng.random(20_000), rng.lognormal(0, 30, 1000), [2.0 ** -60, 0.5, 1.0, 2.0]])
    np.testing.assert_allclose(sample.det_log(u), np.log(u), rtol=1e-14, atol=1e-15)
    z = np.concatenate([rng.normal(0, 20, 20_000), np.arange(-8, 9) * np.pi / 4])
    np.testing.assert_allclose(sample.det_sin(z), np.sin(z), rtol=0, atol=1e-14)
    assert sample.det_exp(np.array([0.0]))[0] == 1.0 and sample.det_log(np.array([1.0]))[0] == 0.0


def test_quantise_puts_values_within_float_noise_on_the_same_grid_point():
    base = np.array([0.1234564, 0.5, 2.718281828, -3.0000004, 57.49999])
    noisy = base * (1 + 4 * np.finfo(float).eps)               # a few ulps off, as another CPU might be
    assert (sample.quantise(base) == sample.quantise(noisy)).all()
    assert sample.quantise(base).tolist() == [0.123456, 0.5, 2.718282, -3.0, 57.49999]
    # a discrete decision on quantised values: ties keep their index order (stable sort)
    keys = sample.quantise(np.array([0.30000000000000004, 0.1, 0.3, 0.2]))
    assert np.argsort(keys, kind="stable").tolist() == [1, 3, 0, 2]


def test_row_dot_products_sum_in_a_fixed_order():
    rng = np.random.default_rng(2)
    a, b = rng.normal(size=(50, 7)), rng.normal(size=(40, 7))
    np.testing.assert_allclose(sample._outer_dot(a, b), a @ b.T, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(sample._rowdot(a, a[::-1]), (a * a[::-1]).sum(1), rtol=1e-12, atol=1e-12)
    # fixed order: k = 0, 1, 2, ... accumulated elementwise, exactly
    expected = ((a[:, 0] * a[:, 0] + a[:, 1] * a[:, 1]) + a[:, 2] * a[:, 2])
    assert (sample._rowdot(a[:, :3], a[:, :3]) == expected).all()
