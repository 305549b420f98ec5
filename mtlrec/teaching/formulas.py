"""The equations of an architecture with the user's own numbers, as LaTeX strings.

``architecture_equations(arch, hparams, tasks, train, d_x=None)`` writes the forward pass of
the chosen architecture (the article's shared layer H = σ(W_H X + b_H) for shared bottom, MMoE's
gated mixture of experts, PLE's levels of shared and task-specific experts, ESMM's
pCTCVR = pCTR × pCVR, AITM's information transfer and calibrator) with the current
layer sizes, number of experts and input width filled in, then how the tasks are trained together:
for a loss weighting the loss L = Σ_i w_i L_i + λ Σ_i ‖θ_i‖² + μ‖E‖² (article §4.2) with the task
weights w_i (static) or w_i(t) (adaptive), λ (``train.l2``) and μ (``train.embedding_l2``); for a
gradient method (``combines == "gradients"`` in `mtlrec.weighting`) the combination of the task
gradients on the shared parameters, ∇θ_s = Σ_i w_i ∇θ_s L_i with w from the method's aggregator.
The input width d_x is symbolic when unknown (no prepared dataset).

Strings only, no streamlit (the Tasks & model page renders each with ``st.latex``); the method's
name and kind come from the weighting registry.
"""
from __future__ import annotations

from typing import Any, Sequence


def input_width(fields: Sequence[Any], hparams: dict) -> int:
    """Width d_x of the fused input X for ``fields`` (FeatureField-like objects or dicts): an
    embedding of ``embedding_dim`` per categorical or multihot field, 1 per numeric field, ``dense_proj_dim`` per
    dense (text-embedding) field, as in mtlrec.models.base.FeatureInput."""
    emb = int(hparams.get("embedding_dim", 16))
    proj = int(hparams.get("dense_proj_dim", 32))
    width = 0
    for f in fields:
        kind = f.get("kind") if isinstance(f, dict) else getattr(f, "kind", None)
        width += emb if kind in ("categorical", "multihot") else proj if kind == "dense" else 1
    return width


def _num(v: float) -> str:
    """A number as written in an equation: 1, 0.5, 0.001, 1\\times10^{-5}."""
    v = float(v)
    if v == int(v) and abs(v) < 1e6:
        return str(int(v))
    s = f"{v:.4g}"
    if "e" in s:
        mant, exp = s.split("e")
        return rf"{mant}\times10^{{{int(exp)}}}"
    return s


def _escape(text: str) -> str:
    """Text for inside LaTeX's \\text{...}: special characters escaped."""
    out = str(text)
    for ch, rep in (("\\", r"\backslash "), ("_", r"\_"), ("{", r"\{"), ("}", r"\}"), ("$", r"\$"),
                    ("#", r"\#"), ("%", r"\%"), ("&", r"\&"), ("^", r"\hat{}"), ("~", r"\sim ")):
        out = out.replace(ch, rep)
    return out


def _name(task: str) -> str:
    """A task name as LaTeX text (subscripts): special characters escaped."""
    return r"\text{" + _escape(task) + "}"


def _dims(dims) -> list[int]:
    return [int(d) for d in (dims or [])]


def _chain(d_in: str, dims: list[int]) -> str:
    return r" \to ".join([d_in] + [str(d) for d in dims])


def _task_list(tasks) -> list[tuple[str, float]]:
    out = []
    for t in tasks or []:
        if isinstance(t, dict):
            out.append((str(t.get("name", "")), float(t.get("weight", 1.0) if t.get("weight") is not None else 1.0)))
        else:
            out.append((str(getattr(t, "name", "")), float(getattr(t, "weight", 1.0))))
    return out


def _train_value(train, key: str, default: float) -> float:
    v = train.get(key, default) if isinstance(train, dict) else getattr(train, key, default)
    return float(default if v is None else v)


def _weighting(train) -> str:
    return str((train.get("weighting", "static") if isinstance(train, dict)
                else getattr(train, "weighting", "static")) or "static")


def _method(name: str) -> tuple[str, str]:
    """(label, what it combines: "losses" | "gradients") of a weighting method; unknown names are
    treated as loss weightings under their own name."""
    from mtlrec.weighting import WEIGHTINGS
    cls = WEIGHTINGS.get(name)
    return (cls.label or name, cls.combines) if cls is not None else (name, "losses")


def _regularisers(train) -> str:
    lam, mu = _train_value(train, "l2", 0.0), _train_value(train, "embedding_l2", 0.0)
    return rf" + \underbrace{{{_num(lam)}}}_{{\lambda}}\sum_i \lVert\theta_i\rVert^2 + " \
           rf"\underbrace{{{_num(mu)}}}_{{\mu}}\lVert E\rVert^2"


def loss_equation(tasks, train) -> str:
    """L = Σ_i w_i L_i + λ Σ_i ‖θ_i‖² + μ‖E‖² with λ and μ filled in, and the task weights w_i of the
    sliders under static weighting (an adaptive loss weighting sets w_i(t) itself: named, not filled)."""
    weighting = _weighting(train)
    head = r"L = \sum_i w_i L_i + \lambda \sum_i \lVert\theta_i\rVert^2 + \mu\lVert E\rVert^2 = "
    if weighting == "static":
        terms = [rf"{_num(w)}\,L_{{{_name(n)}}}" for n, w in _task_list(tasks)] or [r"\sum_i w_i L_i"]
        return head + " + ".join(terms) + _regularisers(train)
    label, _ = _method(weighting)
    terms = [rf"w_{{{_name(n)}}}(t)\,L_{{{_name(n)}}}" for n, _ in _task_list(tasks)] or [r"\sum_i w_i(t) L_i"]
    return (head + " + ".join(terms) + _regularisers(train)
            + rf"\quad\text{{(the loss weights }}w_i(t)\text{{ are set by {_escape(label)} during training)}}")


def gradient_equations(tasks, train) -> list[str]:
    """A gradient method (PCGrad, MGDA, ...) does not weight the losses: it combines the task
    gradients on the shared parameters θ_s. Three equations: the per-task losses, the combination
    ∇θ_s = Σ_i w_i ∇θ_s L_i with w from the aggregator, and each tower's own gradient with λ and μ."""
    label, _ = _method(_weighting(train))
    names = [n for n, _ in _task_list(tasks)]
    T = len(names) or "T"
    losses = ", ".join(rf"L_{{{_name(n)}}}" for n in names) or r"L_1, \dots, L_T"
    lam, mu = _train_value(train, "l2", 0.0), _train_value(train, "embedding_l2", 0.0)
    return [
        rf"{losses}\quad\text{{(one loss per task, not summed into a weighted loss)}}",
        rf"\nabla_{{\theta_s}} = \sum_{{i=1}}^{{{T}}} w_i\,\nabla_{{\theta_s}} L_i,\quad "
        rf"w = \mathcal{{A}}_{{\text{{{_escape(label)}}}}}(J),\quad "
        rf"J = \big[\nabla_{{\theta_s}} L_1; \dots; \nabla_{{\theta_s}} L_{{{T}}}\big]"
        rf"\quad\text{{(}}\theta_s\text{{: embeddings and shared layers; }}w\text{{ recomputed every step)}}",
        rf"\nabla_{{\theta_i}} = \nabla_{{\theta_i}} L_i + 2\cdot\underbrace{{{_num(lam)}}}_{{\lambda}}\,\theta_i,"
        rf"\qquad \nabla_{{E}} \mathrel{{+}}= 2\cdot\underbrace{{{_num(mu)}}}_{{\mu}}\,E"
        rf"\quad\text{{(tower }}i\text{{ learns from its own task only)}}",
    ]


def chain_equations(tasks) -> list[str]:
    """The task chain (`mtlrec.chain`): per chained binary task its entire-space probability,
    p(interact ∧ like) = p(interact) · p(like | interact) -- what a list ranks by -- and per chained
    task its loss over its own space, L_like = mean of ℓ over the rows where interact = 1. [] without
    a chain."""
    from mtlrec.chain import as_specs, chain_of
    specs = as_specs(tasks)
    out = []
    for t in specs:
        if not getattr(t, "given", "") or t.given not in {s.name for s in specs}:
            continue
        names = [c.name for c in chain_of(t, specs)]
        if t.type == "binary":
            factors = [rf"p({_name(names[0])})"] + [rf"p({_name(names[i])} \mid {_name(names[i - 1])})"
                                                   for i in range(1, len(names))]
            joint, product = r" \wedge ".join(_name(n) for n in names), r" \cdot ".join(factors)
            out.append(rf"p({joint}) = {product}\quad\text{{(entire space: what a list ranks by)}}")
        out.append(rf"L_{{{_name(t.name)}}} = \frac{{1}}{{|\Omega_{{{_name(t.name)}}}|}}"
                   rf"\sum_{{r \in \Omega_{{{_name(t.name)}}}}} \ell_{{{_name(t.name)}}}(r),\quad "
                   rf"\Omega_{{{_name(t.name)}}} = \{{r : y_{{{_name(t.given)}}}(r) = 1\}}"
                   r"\quad\text{(its own space)}")
    return out


def training_equations(tasks, train) -> list[str]:
    """How the tasks are combined in training: the loss (`loss_equation`) for a loss weighting, the
    gradient combination (`gradient_equations`) for a gradient method; then the chain's
    (`chain_equations`)."""
    if _method(_weighting(train))[1] == "gradients":
        return gradient_equations(tasks, train) + chain_equations(tasks)
    return [loss_equation(tasks, train)] + chain_equations(tasks)


def _chained_pairs(tasks) -> list[tuple[str, str]]:
    """(parent, child) of every task given another (``given`` of a TaskSpec or a {name, given} dict)
    whose parent is among ``tasks``; the child's type is not checked (a regression child is listed too)."""
    rows = [(t.get("name"), t.get("given"), t.get("type", "binary")) if isinstance(t, dict) else
            (getattr(t, "name", ""), getattr(t, "given", ""), getattr(t, "type", "binary")) for t in tasks or []]
    names = {n for n, _, _ in rows}
    return [(str(g), str(n)) for n, g, _ in rows if g and g in names]


def _types(tasks) -> dict[str, str]:
    return {(t.get("name") if isinstance(t, dict) else getattr(t, "name", "")):
            (t.get("type", "binary") if isinstance(t, dict) else getattr(t, "type", "binary")) for t in tasks or []}


def _esmm_equations(dx: str, tower: list[int], tasks) -> list[str]:
    """ESMM: one tower per task on X; a chained binary task is fitted through the product over every row."""
    T = len(_task_list(tasks))
    eqs = [rf"\hat y_k = \sigma\big(f_k(X;\theta_k)\big),\quad f_k: {_chain(dx, tower)} \to 1\quad (k = 1..{T})"
           r"\quad\text{(no shared layer beyond the embedding)}"]
    types = _types(tasks)
    chains = _chained_pairs(tasks)
    for parent, child in chains:
        p, c = _name(parent), _name(child)
        if types.get(child) != "binary":
            eqs.append(rf"L_{{{c}}}\ \text{{over the rows where }}y_{{{p}}} = 1")
            continue
        eqs.append(rf"\underbrace{{p({p} \wedge {c})}}_{{\text{{pCTCVR}}}} = \underbrace{{\hat y_{{{p}}}}}_{{\text{{pCTR}}}}"
                   rf"\times \underbrace{{\hat y_{{{c}}}}}_{{\text{{pCVR}} = p({c} \mid {p})}}")
        eqs.append(rf"L_{{{c}}} = \mathrm{{BCE}}\big(\hat y_{{{p}}}\,\hat y_{{{c}}},\ y_{{{p}}}\,y_{{{c}}}\big)"
                   r"\quad\text{(over every row: the pCVR tower also learns where the parent is 0)}")
    if not chains:
        eqs.append(r"\text{no task is given another: independent towers over the shared embedding}")
    return eqs


def _aitm_equations(dx: str, tower: list[int], tasks, alpha: float) -> list[str]:
    """AITM: towers on X, the adaptive information transfer along each chain, the calibrator."""
    T = len(_task_list(tasks))
    d = str(tower[-1]) if tower else dx
    eqs = [rf"q_k = f_k(X;\theta_k),\quad f_k: {_chain(dx, tower)}\quad (k = 1..{T})"]
    types = _types(tasks)
    chains = _chained_pairs(tasks)
    for parent, child in chains:
        p, c = _name(parent), _name(child)
        eqs.append(rf"p_{{{p} \to {c}}} = \mathrm{{ReLU}}\big(W_{{{c}}}\,z_{{{p}}} + b_{{{c}}}\big),\quad "
                   rf"z_{{{c}}} = \sum_{{u \in \{{p_{{{p} \to {c}}},\,q_{{{c}}}\}}}} w_u\,h_3(u),\quad "
                   rf"w_u = \mathrm{{softmax}}_u\Big(\tfrac{{\langle h_1(u),\,h_2(u)\rangle}}{{\sqrt{{{d}}}}}\Big)")
        if types.get(child) == "binary":
            eqs.append(rf"\hat y_{{{c}}} = p({p} \wedge {c}),\qquad p({c} \mid {p}) = \hat y_{{{c}}} / p({p})"
                       r"\quad\text{(fitted against }y_{" + p + r"}\,y_{" + c + r"}\text{ over every row)}")
            eqs.append(rf"L_{{{c}}} \mathrel{{+}}= \underbrace{{{_num(alpha)}}}_{{\alpha}}\cdot\frac{{1}}{{N}}\sum_n "
                       rf"\max\big(\hat y_{{{c}}} - \hat y_{{{p}}},\ 0\big)"
                       r"\quad\text{(behavioural expectation calibrator)}")
    eqs.append(r"\hat y_k = \sigma\big(W_k\,z_k + b_k\big),\quad z_k = q_k\text{ for a task given no other}")
    return eqs


def architecture_equations(arch: str, hparams: dict, tasks, train=None, d_x: int | None = None) -> list[str]:
    """The equations of ``arch`` (shared_bottom | mmoe | ple | esmm | aitm) with the numbers of ``hparams``, the task
    weights of ``tasks`` ({name, weight} dicts or Task objects), λ / μ of ``train`` (dict or
    TrainConfig) and the input width ``d_x`` (symbolic when None). Each item is one LaTeX equation;
    the last ones say how the tasks are trained together (`training_equations`)."""
    hp = dict(hparams or {})
    train = train or {}
    dx = str(int(d_x)) if d_x else "d_x"
    names = [n for n, _ in _task_list(tasks)]
    T = len(names)
    tower = _dims(hp.get("tower_dims", [32]))
    emb = int(hp.get("embedding_dim", 16))
    eqs = [rf"X = [\,e_1; \dots; e_F\,] \in \mathbb{{R}}^{{{dx}}}\quad"
           rf"\text{{(each categorical feature embedded in }}\mathbb{{R}}^{{{emb}}}\text{{, numeric features as is)}}"]
    if arch == "shared_bottom":
        dims = _dims(hp.get("shared_dims", [128, 64]))
        prev, parts = dx, []
        for j, d in enumerate(dims, 1):
            src = "X" if j == 1 else f"H^{{({j - 1})}}"
            parts.append(rf"H^{{({j})}} = \sigma\!\left(W_H^{{({j})}} {src} + b_H^{{({j})}}\right),\ "
                         rf"W_H^{{({j})}} \in \mathbb{{R}}^{{{d}\times {prev}}}")
            prev = str(d)
        eqs += parts or [r"H = X"]
        eqs.append(r"\sigma = \mathrm{ReLU},\qquad H = H^{(" + str(len(dims)) + r")} \in \mathbb{R}^{" + prev + "}")
        h_dim = prev
        eqs.append(rf"\hat y_i = f_i(H;\theta_i),\quad f_i: {_chain(h_dim, tower)} \to 1"
                   rf"\quad (i = 1..{T})")
    elif arch == "mmoe":
        n = int(hp.get("n_experts", 4))
        ed = _dims(hp.get("expert_dims", [64]))
        out = str(ed[-1]) if ed else dx
        eqs.append(rf"E_e(x): {_chain(dx, ed)}\ \text{{(ReLU MLP)}},\quad e = 1..{n}")
        eqs.append(rf"g_k(x) = \mathrm{{softmax}}(W_{{g_k}}\,x),\quad W_{{g_k}} \in \mathbb{{R}}^{{{n}\times {dx}}}")
        eqs.append(rf"f_k(x) = \sum_{{e=1}}^{{{n}}} g_k(x)_e\,E_e(x) \in \mathbb{{R}}^{{{out}}}")
        eqs.append(rf"\hat y_k = h_k(f_k(x)),\quad h_k: {_chain(out, tower)} \to 1\quad (k = 1..{T})")
    elif arch == "ple":
        L = int(hp.get("n_levels", 2))
        ms = int(hp.get("n_shared_experts", 2))
        mt = int(hp.get("n_specific_experts", 1))
        ed = _dims(hp.get("expert_dims", [64]))
        out = str(ed[-1]) if ed else dx
        later = rf",\ {_chain(out, ed)}\text{{ after}}" if L > 1 else ""
        eqs.append(rf"\text{{level }} j = 1..{L}:\ {ms}\text{{ shared expert{'s' if ms != 1 else ''} }}"
                   rf"E^{{(j)}}_{{S,1..{ms}}}(x_S^{{(j-1)}})\text{{ and }}{mt}\text{{ expert{'s' if mt != 1 else ''} "
                   rf"of each task }}E^{{(j)}}_{{k,1..{mt}}}(x_k^{{(j-1)}}),\ "
                   rf"{_chain(dx, ed)}\text{{ at level 1}}{later};\quad x_k^{{(0)}} = x_S^{{(0)}} = X")
        eqs.append(rf"x_k^{{(j)}} = \sum_{{e=1}}^{{{ms + mt}}} g_k^{{(j)}}(x_k^{{(j-1)}})_e\,"
                   rf"\big[E^{{(j)}}_{{k}};\,E^{{(j)}}_{{S}}\big]_e,\quad "
                   rf"g_k^{{(j)}} = \mathrm{{softmax}}(W^{{(j)}}_{{g_k}}\,x_k^{{(j-1)}})"
                   rf" \in \mathbb{{R}}^{{{ms + mt}}}")
        if L > 1:                       # the shared gate feeds the next level's shared experts
            eqs.append(rf"x_S^{{(j)}} = \sum_{{e=1}}^{{{ms + T * mt}}} g_S^{{(j)}}(x_S^{{(j-1)}})_e\,"
                       rf"\big[E^{{(j)}}_{{1}};\dots;E^{{(j)}}_{{{T}}};\,E^{{(j)}}_{{S}}\big]_e"
                       rf"\quad(\text{{levels }} j < {L})")
        eqs.append(rf"\hat y_k = h_k\big(x_k^{{({L})}}\big),\quad h_k: {_chain(out, tower)} \to 1\quad (k = 1..{T})")
    elif arch == "esmm":
        eqs += _esmm_equations(dx, tower, tasks)
    elif arch == "aitm":
        eqs += _aitm_equations(dx, tower, tasks, float(hp.get("calibrator_alpha", 0.6)))
    else:
        eqs.append(rf"\hat y_i = f_i(X;\theta)\quad\text{{(architecture '{arch}')}}")
    eqs += training_equations(tasks, train)
    return eqs
