"""SHAP attributions of a multi-task model, per feature group, in logit space.

What is explained
-----------------
Every task's *logit* (binary: the log-odds; regression: the model's output, i.e. the
standardised prediction when the target was standardised -- `mtlrec.explain.api` maps it
to label units; multilabel: the logit of one chosen class (``classes``), or the mean of
its K class logits by default) as a function of the fused input X (`model.embed`).
Integer ids cannot carry gradients, so attributions are computed with respect to X and
each feature's embedding columns are summed back into one value per feature group
(`model.input_groups()`: user id, item id, each user/item/context feature, item text).
The same is done with respect to the shared representation H (`shared_from_input`,
`towers_from_shared`).

Which SHAP explainer
--------------------
* ``deep`` -- `shap.DeepExplainer` (DeepLIFT rescale rule averaged over the background).
  Exactly additive (base + sum of contributions == logit, to float precision) for nets
  of Linear layers and element-wise activations: shared-bottom, and MMoE's X -> H map.
* ``exact`` -- `shap.explainers.Exact` over the feature *groups* with a masker built
  from the background (a group is either the row's own columns or a background row's
  columns; the value of a coalition is the mean logit over the background). These are
  the interventional Shapley values of the groups, additive by construction. Used where
  DeepLIFT is not additive: the softmax gates of MMoE/PLE multiply two functions of X,
  which DeepLIFT's rules cannot split exactly. 2^G model evaluations x background rows
  (G groups, usually <= 10) in large batches; with more than ``EXACT_MAX_GROUPS`` groups
  the permutation estimator (antithetic random orders of the groups, as
  `shap.explainers.Permutation` does) is used instead: approximate values, still exactly additive.
* ``gradient`` -- `shap.GradientExplainer` (expected gradients). Not exactly additive;
  used for *global* importances of gated models, where 500 rows x 2^G evaluations
  would be too slow and only mean |SHAP| is shown.

``method="auto"`` chooses per model by measurement, not by class: DeepExplainer is tried
on a few probe rows and kept when its additivity error is below ``DEEP_EXACT_TOL``.

The model given is never modified: explanations run on a deep copy in eval mode; a copy
that took part in a failed explanation is thrown away.
"""
from __future__ import annotations

import copy
import threading
import time
import warnings
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

SPACE = "logit"
DEEP_EXACT_TOL = 1e-4      # max |base + sum(phi) - f(x)| for DeepExplainer to count as exact
EXACT_MAX_GROUPS = 10      # above this, sampled permutations replace the 2^G exact enumeration


# ---------------------------------------------------------------------------------------------
# small nn.Module wrappers (what SHAP sees)
# ---------------------------------------------------------------------------------------------
def _task_scalar(out: torch.Tensor, kind: str = "") -> torch.Tensor:
    """[b] logits as they are; [b, K] multilabel logits -> their mean (still additive); a
    distribution's ([b, K], ``kind`` "distribution") -> the log share of its largest class (a
    softmax's logits are defined only up to a shift, their mean means nothing)."""
    if kind == "distribution":
        return torch.log_softmax(out.float(), dim=-1).max(dim=-1).values
    return out if out.dim() == 1 else out.mean(dim=-1)


def _task_kinds(model) -> dict:
    """{task name: task type} of a model's tasks."""
    return {t.name: t.type for t in (getattr(model, "tasks", None) or [])}


class TaskLogits(nn.Module):
    """X -> [b, n_tasks]: one logit column per task (``tasks`` order); a chained binary task's is
    the logit of its entire-space probability (`mtlrec.chain.entire_space_logit`: what a list ranks
    by). ``classes`` {task: k}: a multilabel task's column is the logit of its class k instead of
    the mean over classes; a distribution task's is the log share (log-softmax) of its class k,
    else of its largest share (a softmax's logits are defined only up to a shift)."""

    def __init__(self, model: nn.Module, tasks: list[str], classes: dict | None = None):
        super().__init__()
        self.model = model
        self.tasks = list(tasks)
        self.classes = {t: int(k) for t, k in (classes or {}).items() if k is not None}

    def forward(self, x):
        out = self.model.forward_from_input(x)
        return torch.stack([self._column(t, out) for t in self.tasks], dim=1)

    def _column(self, task: str, outs: dict) -> torch.Tensor:
        from mtlrec.chain import entire_space_logit
        specs = {t.name: t for t in (getattr(self.model, "tasks", None) or [])}
        if task in specs and specs[task].type == "binary":     # a chained task: its entire-space logit
            return entire_space_logit(specs[task], list(specs.values()), outs)
        out = outs[task]
        k = self.classes.get(task)
        if task in specs and specs[task].type == "distribution":   # softmax: the log share of a class
            if k is None:
                return _task_scalar(out, "distribution")
            return torch.log_softmax(out.float(), dim=-1)[:, k]
        if k is not None and out.dim() == 2:
            return out[:, k]
        return _task_scalar(out)


class SharedToTasks(nn.Module):
    """H -> [b, n_tasks] through the towers (architectures with ``has_shared_towers``)."""

    def __init__(self, model: nn.Module, tasks: list[str]):
        super().__init__()
        self.model = model
        self.tasks = list(tasks)

    def forward(self, h):
        out = self.model.towers_from_shared(h)
        kinds = _task_kinds(self.model)
        return torch.stack([_task_scalar(out[t], kinds.get(t, "")) for t in self.tasks], dim=1)


class ExpertMixToTask(nn.Module):
    """Gated expert outputs Z [b, n_experts * d] (expert k's output times task t's gate weight)
    -> task t's logit, through its tower: ``tower(sum_k Z_k)``. The sum is linear, so
    DeepExplainer splits the tower's logit exactly over the experts."""

    def __init__(self, tower: nn.Module, n_experts: int, kind: str = ""):
        super().__init__()
        self.tower = tower
        self.n_experts = int(n_experts)
        self.kind = kind

    def forward(self, z):
        mixed = z.reshape(z.shape[0], self.n_experts, -1).sum(dim=1)
        return _task_scalar(self.tower(mixed), self.kind).unsqueeze(1)


class InputToShared(nn.Module):
    """X -> H[:, units] (the shared representation, or some of its units)."""

    def __init__(self, model: nn.Module, units):
        super().__init__()
        self.model = model
        self.register_buffer("units", torch.as_tensor(np.asarray(units, dtype=np.int64)))

    def forward(self, x):
        return self.model.shared_from_input(x).index_select(1, self.units)


# ---------------------------------------------------------------------------------------------
# results
# ---------------------------------------------------------------------------------------------
@dataclass
class Attribution:
    """Attributions of several rows: ``values[row, group, task]`` in logit space."""
    groups: list[str]
    tasks: list[str]
    values: np.ndarray            # [n, G, T]
    base_values: np.ndarray       # [T] (mean logit over the background)
    outputs: np.ndarray           # [n, T] the logits explained
    method: str
    space: str = SPACE
    elapsed_ms: float = 0.0
    info: dict = field(default_factory=dict)

    def additivity_error(self) -> float:
        recon = self.base_values[None, :] + self.values.sum(axis=1)
        return float(np.max(np.abs(recon - self.outputs))) if self.outputs.size else 0.0


class GroupMasker:
    """A SHAP masker over feature groups: masked groups take the background rows' columns.

    ``masker(mask, x)`` returns the background matrix with the columns of the groups in
    ``mask`` replaced by the row's own values; SHAP averages the model over those rows."""

    def __init__(self, background: np.ndarray, groups: list[list[int]]):
        self.data = np.asarray(background, dtype=np.float32)
        self.groups = [np.asarray(g, dtype=np.int64) for g in groups]
        self.shape = (self.data.shape[0], len(self.groups))
        self.clustering = None

    def __call__(self, mask, x):
        out = self.data.copy()
        x = np.asarray(x, dtype=np.float32)
        for k in np.flatnonzero(mask):
            g = self.groups[k]
            out[:, g] = x[g]
        return (out,)

    def mask_shapes(self, x):
        return [(len(self.groups),)]

    def invariants(self, x):
        """[n_background, G]: True where the background row equals x on the whole group."""
        x = np.asarray(x, dtype=np.float32)
        return np.stack([np.all(self.data[:, g] == x[g], axis=1) for g in self.groups], axis=1)


def _group_sum(phi: np.ndarray, groups: list[list[int]]) -> np.ndarray:
    """[n, d] column attributions -> [n, G] group attributions."""
    return np.stack([phi[:, g].sum(axis=1) for g in groups], axis=1)


# ---------------------------------------------------------------------------------------------
# DeepExplainer, batched over rows
# ---------------------------------------------------------------------------------------------
def _deep_phi(explainer, x: torch.Tensor, background: torch.Tensor, n_out: int,
              chunk_pairs: int = 16384, progress=None) -> np.ndarray:
    """DeepExplainer attributions [n, d, n_out] of rows ``x`` against ``background``.

    Uses `shap.DeepExplainer`'s own DeepLIFT hooks, batched: the public ``shap_values``
    runs one forward/backward per (row, output); this runs one forward per chunk of
    (row, background) pairs and one backward per output. Same numbers (a test compares
    them with ``shap_values``)."""
    from shap.explainers._deep import deep_pytorch as dp

    e = explainer.explainer               # the PyTorchDeep instance
    n, d = x.shape
    nb = background.shape[0]
    rows_per_chunk = max(1, chunk_pairs // nb)
    out = np.zeros((n, d, n_out), dtype=np.float64)
    handles = e.add_handles(e.model, dp.add_interim_values, dp.deeplift_grad)
    try:
        n_chunks = (n + rows_per_chunk - 1) // rows_per_chunk
        for ci, s in enumerate(range(0, n, rows_per_chunk)):
            xs = x[s:s + rows_per_chunk]
            c = xs.shape[0]
            xr = xs.repeat_interleave(nb, dim=0)
            br = background.repeat(c, 1)
            grads = _gradients(e.model, torch.cat([xr, br], dim=0), n_out)
            delta = xr - br
            for k in range(n_out):
                g = grads[k][: c * nb]
                out[s:s + c, :, k] = (g * delta).reshape(c, nb, d).mean(1).double().numpy()
            if progress is not None:
                progress((ci + 1) / n_chunks)
    finally:
        for h in handles:
            h.remove()
        e.remove_attributes(e.model)
    return out


def _gradients(model, joint: torch.Tensor, n_out: int) -> list[torch.Tensor]:
    """d output[:, k] / d input for every row of ``joint`` and every k: one forward, n_out backwards."""
    inp = joint.detach().requires_grad_(True)
    grads = []
    with torch.enable_grad():
        out = model(inp)
        for k in range(n_out):
            (g,) = torch.autograd.grad(out[:, k].sum(), inp, retain_graph=k + 1 < n_out)
            grads.append(g.detach())
    return grads


# ---------------------------------------------------------------------------------------------
# exact Shapley values over feature groups (interventional, background masker)
# ---------------------------------------------------------------------------------------------
def shapley_matrix(n_groups: int) -> tuple[np.ndarray, np.ndarray]:
    """(masks [2^G, G] bool, C [G, 2^G]) with phi = C @ v for coalition values v [2^G].

    phi_i = sum over S not containing i of |S|!(G-|S|-1)!/G! * (v(S + i) - v(S))."""
    from math import factorial
    G = int(n_groups)
    codes = np.arange(2 ** G)
    masks = ((codes[:, None] >> np.arange(G)[None, :]) & 1).astype(bool)
    size = masks.sum(1)
    w = np.array([factorial(s) * factorial(G - s - 1) / factorial(G) for s in range(G)] + [0.0])
    C = np.where(masks.T, w[np.maximum(size - 1, 0)][None, :], -w[size][None, :])
    return masks, C


def permutation_matrix(n_groups: int, n_perms: int = 16, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(masks, C) of the permutation estimator of Shapley values (antithetic pairs of random
    orders): for each order, every group gets v(groups before it + itself) - v(groups before it).
    Each order's contributions sum to v(all) - v(empty), so the estimate is exactly additive."""
    G = int(n_groups)
    rng = np.random.default_rng(seed)
    perms = []
    for _ in range(max(1, n_perms // 2)):
        p = rng.permutation(G)
        perms += [p, p[::-1]]
    P = len(perms)
    masks = np.zeros((1 + P * G, G), dtype=bool)            # row 0: the empty coalition
    C = np.zeros((G, 1 + P * G))
    for pi, p in enumerate(perms):
        prev = 0
        for k, g in enumerate(p):
            idx = 1 + pi * G + k
            masks[idx] = masks[prev]
            masks[idx, g] = True
            C[g, idx] += 1.0 / P
            C[g, prev] -= 1.0 / P
            prev = idx
    return masks, C


def exact_group_shapley(net: nn.Module, x: torch.Tensor, background: torch.Tensor, groups: list[list[int]],
                        max_rows: int = 262144, game=None) -> tuple[np.ndarray, np.ndarray]:
    """Exact Shapley values of feature groups: ([n, G, T] values, [T] base value).

    The value of a coalition S is the mean model output over the background rows with
    the columns of the groups in S set to the row's values -- the game
    `shap.explainers.Exact` solves with `GroupMasker` (a test checks both agree). It is
    evaluated here in one batched pass (all 2^G coalitions x background rows at once);
    shap's implementation needs a numba compilation of tens of seconds per process.
    ``game``: (masks, C) of another estimator (`permutation_matrix`); masks[0] must be empty."""
    n, d = x.shape
    nb = background.shape[0]
    G = len(groups)
    masks, C = game if game is not None else shapley_matrix(G)
    colmask = np.zeros((len(masks), d), dtype=bool)
    for gi, cols in enumerate(groups):
        colmask[:, cols] = masks[:, gi:gi + 1]
    cm = torch.as_tensor(colmask)[:, None, :]                       # [S, 1, d]
    Ct = torch.as_tensor(C, dtype=torch.float64)
    values, v_all = [], []
    per = max(1, max_rows // nb)                                     # coalitions per forward
    with torch.no_grad():
        for i in range(n):
            xi = x[i][None, None, :]
            vs = []
            for s in range(0, len(masks), per):
                inp = torch.where(cm[s:s + per], xi, background[None, :, :])   # [s, nb, d]
                out = net(inp.reshape(-1, d)).double()
                vs.append(out.reshape(inp.shape[0], nb, -1).mean(1))
            v = torch.cat(vs, 0)                                      # [2^G, T]
            values.append((Ct @ v).numpy())
            v_all.append(v[0].numpy())
    return np.stack(values, 0), v_all[0]


def expected_gradients(net: nn.Module, x: torch.Tensor, background: torch.Tensor, n_out: int,
                       nsamples: int = 16, seed: int = 0, chunk: int = 16384, progress=None) -> np.ndarray:
    """Expected-gradients attributions [n, d, n_out]: the estimator of `shap.GradientExplainer`
    (phi = E[(x - b) * grad f(b + a (x - b))], b from the background, a ~ U(0, 1)), with
    all samples of many rows in one batch instead of a Python loop per sample."""
    g = torch.Generator().manual_seed(int(seed))
    n, d = x.shape
    out = np.zeros((n, d, n_out), dtype=np.float64)
    rows = max(1, chunk // nsamples)
    n_chunks = (n + rows - 1) // rows
    for ci, s in enumerate(range(0, n, rows)):
        xs = x[s:s + rows]
        c = xs.shape[0]
        bi = torch.randint(0, background.shape[0], (c * nsamples,), generator=g)
        a = torch.rand(c * nsamples, 1, generator=g)
        xr = xs.repeat_interleave(nsamples, dim=0)
        b = background[bi]
        grads = _gradients(net, b + a * (xr - b), n_out)
        for k in range(n_out):
            out[s:s + c, :, k] = (grads[k] * (xr - b)).reshape(c, nsamples, d).mean(1).double().numpy()
        if progress is not None:
            progress((ci + 1) / n_chunks)
    return out


# ---------------------------------------------------------------------------------------------
# the explainer
# ---------------------------------------------------------------------------------------------
class ModelExplainer:
    """SHAP explanations of one multi-task model over one background sample.

    ``model``: a MultiTaskModel (never modified). ``background_x``: fused inputs X of
    training rows [n_bg, d_x]. ``method`` for local explanations: "auto" (DeepExplainer
    where it is exactly additive, else exact group Shapley values), "deep", "exact",
    "shap_exact" (the same values through `shap.explainers.Exact`), "permutation"
    (sampled orders of the groups; additive) or "gradient" (`shap.GradientExplainer`, approximate).
    """

    METHODS = ("auto", "deep", "exact", "shap_exact", "permutation", "gradient")
    N_PERMUTATIONS = 16

    def __init__(self, model, background_x, *, method: str = "auto", tasks: list[str] | None = None,
                 seed: int = 0):
        if method not in self.METHODS:
            raise ValueError(f"unknown explanation method '{method}'; choose one of {', '.join(self.METHODS)}")
        bg = torch.as_tensor(background_x, dtype=torch.float32).detach().cpu()
        if bg.dim() != 2 or bg.shape[0] < 1:
            raise ValueError(f"the background must be a non-empty matrix of fused inputs, got shape "
                             f"{tuple(bg.shape)}")
        if not torch.isfinite(bg).all():
            raise ValueError("the background sample contains NaN or infinite values")
        self._source = model
        self.tasks = list(tasks) if tasks else list(model.task_names)
        groups = model.input_groups()
        self.group_names = list(groups)
        self.group_cols = [list(v) for v in groups.values()]
        d_x = sum(len(c) for c in self.group_cols)
        if bg.shape[1] != d_x:
            raise ValueError(f"the background has {bg.shape[1]} columns but the model's fused input has {d_x}")
        self.background = bg
        self.seed = int(seed)
        self.requested_method = method
        self._copy = None
        self._methods: dict[str, str] = {}
        self._lock = threading.RLock()     # one explanation at a time per explainer (hooks on the copy)

    # ---- the model copy ---------------------------------------------------------------------
    def _model(self):
        if self._copy is None:
            m = copy.deepcopy(self._source).cpu().eval()
            for p in m.parameters():
                p.requires_grad_(False)
            self._copy = m
        return self._copy

    def _discard_copy(self):
        self._copy = None

    def _logits(self, x: torch.Tensor, classes: dict | None = None) -> np.ndarray:
        with torch.no_grad():
            return TaskLogits(self._model(), self.tasks, classes)(x).double().numpy()

    # ---- method choice ----------------------------------------------------------------------
    def method_for(self, target: str = "input") -> str:
        """"deep" when DeepLIFT is exactly additive for ``target`` ("input": X -> task logits,
        "shared": X -> H), measured on probe rows; otherwise "exact" (input) / "gradient" (shared).
        For "input" an explicitly requested method wins."""
        if self.requested_method != "auto" and target == "input":
            return self.requested_method
        if target not in self._methods:
            exact = self._deep_is_exact(target)
            self._methods[target] = "deep" if exact else ("exact" if target == "input" else "gradient")
        return self._methods[target]

    def _deep_is_exact(self, target: str) -> bool:
        import shap
        bg = self.background
        ref = bg[: min(len(bg), 16)]
        probe = bg[-min(len(bg), 4):] if len(bg) > 1 else bg + 0.5
        try:
            model = copy.deepcopy(self._model())
            if target == "input":
                net = TaskLogits(model, self.tasks)
            else:
                with torch.no_grad():
                    d_h = model.shared_from_input(ref[:1]).shape[1]
                net = InputToShared(model, np.arange(min(d_h, 4)))
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                ex = shap.DeepExplainer(net, ref)
                with torch.no_grad():
                    n_out = net(ref[:1]).shape[1]
                phi = _deep_phi(ex, probe, ref, n_out)
            with torch.no_grad():
                f = net(probe).double().numpy()
            err = np.abs(phi.sum(1) + np.asarray(ex.expected_value).reshape(1, -1) - f).max()
            return bool(err <= DEEP_EXACT_TOL * max(1.0, float(np.abs(f).max())))
        except Exception:
            return False

    # ---- local / row explanations -------------------------------------------------------------
    def explain(self, x, method: str | None = None, classes: dict | None = None) -> Attribution:
        """Attributions of the task logits of rows ``x`` (fused inputs [n, d_x]) to the groups.

        ``classes`` {multilabel task: class index}: explain that class's logit (default: the
        mean logit over the task's classes)."""
        x = torch.as_tensor(x, dtype=torch.float32).detach().cpu()
        if x.dim() == 1:
            x = x[None, :]
        if x.dim() != 2 or x.shape[1] != self.background.shape[1]:
            raise ValueError(f"rows have shape {tuple(x.shape)}; the model's fused input has "
                             f"{self.background.shape[1]} columns")
        t0 = time.perf_counter()
        classes = {t: int(k) for t, k in (classes or {}).items() if k is not None}
        with self._lock:
            att = self._explain_locked(x, method, classes)
        att.info["classes"] = dict(classes)
        att.elapsed_ms = (time.perf_counter() - t0) * 1000.0
        return att

    def _explain_locked(self, x, method, classes=None) -> Attribution:
        try:
            m = method or self.method_for("input")
            if m == "auto":
                m = self.method_for("input")
            if m == "deep":
                att = self._explain_deep(x, classes=classes)
            elif m == "exact" and len(self.group_cols) <= EXACT_MAX_GROUPS:
                att = self._explain_exact(x, classes=classes)
            elif m in ("exact", "permutation"):
                att = self._explain_permutation(x, classes=classes)
            elif m == "shap_exact":
                att = self._explain_shap_exact(x, classes=classes)
            elif m == "gradient":
                att = self._explain_gradient(x, classes=classes)
            else:
                raise ValueError(f"unknown explanation method '{m}'")
        except BaseException:
            self._discard_copy()
            raise
        return att

    def _explain_deep(self, x, progress=None, background=None, classes=None) -> Attribution:
        import shap
        bg = self.background if background is None else background
        net = TaskLogits(self._model(), self.tasks, classes)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ex = shap.DeepExplainer(net, bg)
            phi = _deep_phi(ex, x, bg, len(self.tasks), progress=progress)
        base = np.asarray(ex.expected_value, dtype=np.float64).reshape(-1)
        return Attribution(self.group_names, self.tasks, _group_sum_3d(phi, self.group_cols), base,
                           self._logits(x, classes), "deep")

    def _explain_exact(self, x, classes=None) -> Attribution:
        net = TaskLogits(self._model(), self.tasks, classes)
        values, base = exact_group_shapley(net, x, self.background, self.group_cols)
        return Attribution(self.group_names, self.tasks, values, base, self._logits(x, classes), "exact")

    def _explain_permutation(self, x, classes=None) -> Attribution:
        net = TaskLogits(self._model(), self.tasks, classes)
        game = permutation_matrix(len(self.group_cols), self.N_PERMUTATIONS, self.seed)
        values, base = exact_group_shapley(net, x, self.background, self.group_cols, game=game)
        return Attribution(self.group_names, self.tasks, values, base, self._logits(x, classes), "permutation")

    def _explain_shap_exact(self, x, classes=None) -> Attribution:
        import shap
        net = TaskLogits(self._model(), self.tasks, classes)

        def f(a):
            with torch.no_grad():
                return net(torch.as_tensor(np.asarray(a), dtype=torch.float32)).double().numpy()

        masker = GroupMasker(self.background.numpy(), self.group_cols)
        G = len(self.group_cols)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ex = shap.explainers.Exact(f, masker, feature_names=self.group_names)
            res = ex(x.numpy(), max_evals=2 ** G + 1, batch_size=2 ** G, silent=True)
        values = np.asarray(res.values, dtype=np.float64).reshape(len(x), G, len(self.tasks))
        base = np.asarray(res.base_values, dtype=np.float64).reshape(len(x), len(self.tasks))[0]
        return Attribution(self.group_names, self.tasks, values, base, self._logits(x, classes), "shap_exact")

    def _explain_gradient(self, x, nsamples: int = 200, classes=None) -> Attribution:
        import shap
        net = TaskLogits(self._model(), self.tasks, classes)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ex = shap.GradientExplainer(net, self.background)
            phi = ex.shap_values(x, nsamples=nsamples, rseed=self.seed)
        phi = np.asarray(phi, dtype=np.float64).reshape(len(x), x.shape[1], len(self.tasks))
        base = self._logits(self.background, classes).mean(axis=0)
        return Attribution(self.group_names, self.tasks, _group_sum_3d(phi, self.group_cols), base,
                           self._logits(x, classes), "gradient")

    # ---- global views -------------------------------------------------------------------------
    def global_summary(self, x, *, features=None, background: int = 32, max_units: int = 24,
                       heatmap_rows: int = 100, heatmap_background: int = 20, gradient_samples: int = 16,
                       progress=None) -> dict:
        """Global views over rows ``x`` (fused inputs; ``features`` = the same rows' feature
        dict, for gate weights). ``background``: background rows used here (mean |SHAP|
        needs fewer than exact local explanations).

        Returns ``{"importance": {task: {group: mean |SHAP|}}, "importance_method",
        "mean_contribution", "heatmap": {"groups", "units", "unit_labels", "values" [G][U],
        "method"}, "tower_reliance": {"units", "values": {task: [per unit]}} (shared towers),
        "gates": {task: {expert: mean weight}} (gated models), "n_rows", "elapsed_ms"}``."""
        def report(frac, msg):
            if progress is not None:
                progress(float(min(max(frac, 0.0), 1.0)), msg)

        x = torch.as_tensor(x, dtype=torch.float32).detach().cpu()
        if x.dim() != 2 or len(x) == 0:
            raise ValueError("the global summary needs at least one row")
        bg = self.background[: max(1, int(background))]
        t0 = time.perf_counter()
        out: dict = {"space": SPACE, "n_rows": int(len(x)), "background": int(len(bg))}
        self._lock.acquire()
        try:
            report(0.0, "choosing the explainer")
            # 1) per-task importance of the feature groups
            prog = lambda f: report(0.05 + 0.55 * f, "feature importance per task")  # noqa: E731
            if self.method_for("input") == "deep":
                att = self._explain_deep(x, progress=prog, background=bg)
            else:
                net = TaskLogits(self._model(), self.tasks)
                phi = expected_gradients(net, x, bg, len(self.tasks), gradient_samples, self.seed, progress=prog)
                att = Attribution(self.group_names, self.tasks, _group_sum_3d(phi, self.group_cols),
                                  self._logits(bg).mean(0), self._logits(x), "gradient")
            out["importance_method"] = att.method
            imp = np.abs(att.values).mean(axis=0)          # [G, T]
            out["importance"] = {t: {g: float(imp[i, j]) for i, g in enumerate(self.group_names)}
                                 for j, t in enumerate(self.tasks)}
            out["mean_contribution"] = {t: {g: float(att.values[:, i, j].mean())
                                            for i, g in enumerate(self.group_names)}
                                        for j, t in enumerate(self.tasks)}
            # 2) which groups drive which shared units
            report(0.6, "shared representation")
            out["heatmap"] = self._heatmap(x[:heatmap_rows], max_units, self.background[:heatmap_background],
                                           gradient_samples,
                                           lambda f: report(0.6 + 0.3 * f, "shared representation"))
            # 3) which shared units each task relies on / the gates
            report(0.9, "towers and gates")
            model = self._model()
            if getattr(model, "has_shared_towers", False):
                out["tower_reliance"] = self._tower_reliance(x[: 2 * heatmap_rows], bg)
            if getattr(model, "has_gates", False) and features is not None:
                with torch.no_grad():
                    gw = model.gate_weights(features)
                names = model.expert_names()
                out["gates"] = {t: dict(zip(names, map(float, gw[t].double().mean(0).cpu().numpy())))
                                for t in self.tasks if t in gw}
                if getattr(model, "arch", "") == "ple":
                    out["gates_note"] = "last-level gates: the task's own experts first, then the shared experts"
                experts = self._expert_reliance(x, features, gw)
                if experts is not None:
                    out["expert_reliance"] = experts
        except BaseException:
            self._discard_copy()
            raise
        finally:
            self._lock.release()
        out["elapsed_ms"] = (time.perf_counter() - t0) * 1000.0
        report(1.0, "done")
        return out

    def _heatmap(self, x, max_units, bg, nsamples, progress) -> dict:
        import shap
        model = self._model()
        with torch.no_grad():
            h = model.shared_from_input(torch.cat([x, bg], 0))
        spread = h.std(0).numpy()
        order = np.argsort(-spread, kind="stable")
        keep = order[: max_units] if max_units else order
        units = np.sort(keep[spread[keep] > 0]) if np.any(spread[keep] > 0) else np.sort(keep[:1])
        net = InputToShared(model, units)
        method = self.method_for("shared")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if method == "deep":
                ex = shap.DeepExplainer(net, bg)
                phi = _deep_phi(ex, x, bg, len(units), progress=progress)
            else:
                phi = expected_gradients(net, x, bg, len(units), nsamples, self.seed, progress=progress)
        vals = np.abs(_group_sum_3d(phi, self.group_cols)).mean(0)      # [G, U]
        return {"groups": list(self.group_names), "units": [int(u) for u in units],
                "unit_labels": _unit_labels(model, units), "values": vals.tolist(), "method": method}

    def _expert_reliance(self, x, features, gates, n_bg: int = 32) -> dict | None:
        """Task -> expert -> mean |SHAP| of the task's logit w.r.t. its gated expert outputs.

        Where it makes sense: H concatenates the experts every gate mixes (MMoE) and the
        towers read their mix. Checked by recomputing each task's logit that way; if it
        does not match (PLE: task-specific experts are not in H), None."""
        import shap
        model = self._model()
        towers = getattr(model, "towers", None)
        names = list(getattr(model, "task_names", []))
        if towers is None or len(towers) != len(names):
            return None
        with torch.no_grad():
            h = model.shared_from_input(x)
            out = model.forward_from_input(x)
        result = {}
        for t in self.tasks:
            g = gates.get(t)
            if g is None or h.shape[1] % g.shape[1]:
                return None
            k = g.shape[1]
            if len(model.shared_expert_names()) != k:     # H is not the experts this gate mixes
                return None
            z = (h.reshape(len(h), k, -1) * g[:, :, None]).reshape(len(h), -1)
            kind = _task_kinds(model).get(t, "")
            net = ExpertMixToTask(towers[names.index(t)], k, kind)
            with torch.no_grad():
                try:
                    same = torch.allclose(net(z)[:, 0], _task_scalar(out[t], kind), atol=1e-4, rtol=1e-4)
                except RuntimeError:      # shapes do not fit: the towers read something else
                    return None
            if not same:
                return None
            bg = z[: min(n_bg, len(z))]
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                ex = shap.DeepExplainer(net, bg)
                phi = _deep_phi(ex, z, bg, 1)[:, :, 0]                # [n, k*d]
            per_expert = np.abs(phi.reshape(len(z), k, -1).sum(2)).mean(0)
            result[t] = dict(zip(model.shared_expert_names(), map(float, per_expert)))
        return result

    def _tower_reliance(self, x, bg) -> dict:
        import shap
        model = self._model()
        with torch.no_grad():
            h = model.shared_from_input(x)
            hb = model.shared_from_input(bg)
        net = SharedToTasks(model, self.tasks)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ex = shap.DeepExplainer(net, hb)
            phi = _deep_phi(ex, h, hb, len(self.tasks))
        imp = np.abs(phi).mean(0)           # [d_h, T]
        return {"method": "deep", "units": list(range(h.shape[1])),
                "values": {t: imp[:, j].tolist() for j, t in enumerate(self.tasks)}}


def _group_sum_3d(phi: np.ndarray, groups: list[list[int]]) -> np.ndarray:
    """[n, d, T] -> [n, G, T]."""
    return np.stack([phi[:, g, :].sum(axis=1) for g in groups], axis=1)


def _unit_labels(model, units) -> list[str]:
    """'u12', or 'expert 2 · u5' when H concatenates experts (MMoE; PLE: 'shared 1 · u5'), the
    experts numbered from 1 as everywhere else."""
    hp = getattr(model, "hparams", {}) or {}
    dims = hp.get("expert_dims")
    names = model.shared_expert_names() if getattr(model, "has_gates", False) else []
    if names and dims:
        d = int(dims[-1])
        return [f"{names[int(u) // d]} · u{int(u) % d}" for u in units]
    return [f"u{int(u)}" for u in units]


def state_snapshot(model) -> dict:
    """A copy of every tensor of ``model.state_dict()`` (to check a model is unchanged)."""
    return {k: v.detach().clone() for k, v in model.state_dict().items()}
