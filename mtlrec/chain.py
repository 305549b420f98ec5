"""Task chains: a task conditional on another, trained over its own space, scored over the entire space.

A task may be *given* another binary task (``TaskSpec.given``, e.g. like given interact): it
describes what happens after its parent's event, so

* its **own space** is the rows where the parent's label is 1 (and, along a longer chain, where
  the parent's own space holds too). A regression or distribution task's own space never holds
  sampled negatives either (their rating, their user's interests are made up), chained or not, and
  a distribution task's holds only rows with a known distribution (not all zeros). Its loss and its metrics count
  only those rows (`own_space`, `split_masks`);
* its **entire-space probability** is the product along the chain (ESMM, Ma et al., SIGIR 2018):
  p(interact ∧ like) = p(interact) · p(like | interact) (`entire_space`, `entire_space_logit`) --
  the quantity a recommendation list ranks by.

How the model learns a chained task is the architecture's choice (``MultiTaskModel.chain_training``):
``"conditional"`` (every architecture by default) fits p(like | interact) on the task's own space;
``"entire_space"`` (ESMM, AITM) fits the product p(interact)·p(like | interact) against
interact·like over every row, so the conditional tower is trained on the whole space
(`task_losses`).
"""
from __future__ import annotations

import math

from mtlrec.errors import DataError

SAMPLED_KEY = "__sampled__"     # the batch's labels dict: True on sampled negative rows
CHAIN_MODES = ("conditional", "entire_space")


# ---- the chain's shape ------------------------------------------------------------------------------
def parents(tasks) -> dict[str, str]:
    """{task: the task it is given} for the chained tasks."""
    return {t.name: t.given for t in tasks if getattr(t, "given", "")}


def chain_of(task, tasks) -> list:
    """The task's ancestors, nearest last, then the task: [interact, like] for like given interact.
    A parent not among ``tasks`` (a single-task baseline of a chained task) ends the chain."""
    by_name = {t.name: t for t in tasks}
    out = [task]
    while getattr(out[0], "given", "") and out[0].given in by_name:
        out.insert(0, by_name[out[0].given])
    return out


def check_chain(tasks) -> None:
    """A DataError (what, where, how to fix) for a parent that is missing, not binary, the task itself,
    or a cycle."""
    by_name = {t.name: t for t in tasks}
    for t in tasks:
        g = getattr(t, "given", "")
        if not g:
            continue
        if g == t.name:
            raise DataError(f"task '{t.name}' is given itself", fix="set 'given' to another task, or leave it empty")
        if g not in by_name:
            raise DataError(f"task '{t.name}' is given '{g}', which is not one of the tasks "
                            f"({', '.join(by_name)})", fix=f"add a binary task '{g}', or leave 'given' empty")
        if by_name[g].type != "binary":
            raise DataError(f"task '{t.name}' is given '{g}', a {by_name[g].type} task; a chain's parent must be "
                            "binary (an event that happens or not)", fix="choose a binary parent task")
        seen, cur = {t.name}, by_name[g]
        while getattr(cur, "given", ""):
            if cur.name in seen:
                raise DataError(f"the chain of task '{t.name}' loops back to itself ({' → '.join(seen)})",
                                fix="make one task of the loop unconditional (empty 'given')")
            seen.add(cur.name)
            cur = by_name.get(cur.given)
            if cur is None:
                break


def describe(tasks) -> list[str]:
    """One formula per chained binary task, e.g. "p(interact ∧ like) = p(interact) · p(like | interact)",
    and one line per chained regression task ("rating is learned on interact = 1 rows")."""
    out = []
    for t in tasks:
        if not getattr(t, "given", ""):
            continue
        chain = chain_of(t, tasks)
        if t.type == "binary":
            names = [c.name for c in chain]
            factors = [f"p({names[0]})"] + [f"p({names[i]} | {names[i - 1]})" for i in range(1, len(names))]
            out.append(f"p({' ∧ '.join(names)}) = {' · '.join(factors)}")
        else:
            out.append(f"{t.name} is learned and scored on the rows where {t.given} = 1")
    return out


# ---- own space: the rows a task's loss and metrics count ----------------------------------------------
def own_space(task, labels):
    """Bool mask (torch tensor or numpy array, like the labels) of the rows in ``task``'s own space, or
    None for every row. ``labels``: {label name: values} plus `SAMPLED_KEY` when rows were sampled.
    The parent's label is ``task.given_label``."""
    mask = None
    sampled = labels.get(SAMPLED_KEY)
    if task.type in ("regression", "distribution") and sampled is not None:
        mask = ~sampled.bool() if hasattr(sampled, "bool") else ~sampled.astype(bool)
    if task.type == "distribution" and task.label in labels:    # a user of unknown interests: all zeros
        known = labels[task.label].sum(-1) > 0
        mask = known if mask is None else (mask & known)
    parent = getattr(task, "given_label", "")
    if getattr(task, "given", "") and parent in labels:
        on = labels[parent] > 0.5
        mask = on if mask is None else (mask & on)
    return mask


def split_masks(tasks, ds, split: str) -> dict:
    """{task: numpy bool mask or None} over the rows of ``split`` of a PreparedDataset (`own_space`)."""
    import numpy as np
    rows = ds.rows[split]
    labels = {k[len("label:"):]: np.asarray(v) for k, v in rows.items() if k.startswith("label:")}
    if "sampled" in rows:
        labels[SAMPLED_KEY] = np.asarray(rows["sampled"], dtype=bool)
    return {t.name: own_space(t, labels) for t in tasks}


# ---- losses ----------------------------------------------------------------------------------------
def _log1mexp(x):
    """log(1 - exp(x)) for x <= 0, stable at both ends."""
    import torch
    x = torch.clamp(x, max=-1e-7)
    return torch.where(x > -math.log(2), torch.log(-torch.expm1(x)), torch.log1p(-torch.exp(x)))


def entire_space_log_prob(task, tasks, out):
    """log p of the chain's joint event from the logits ``out`` (log-sigmoid summed along the chain)."""
    import torch.nn.functional as F
    return sum(F.logsigmoid(out[c.name].float()) for c in chain_of(task, tasks))


def entire_space_logit(task, tasks, out):
    """The logit of the entire-space probability of ``task`` (its own logit when it is not chained)."""
    if task.type != "binary" or len(chain_of(task, tasks)) == 1:
        return out[task.name].float()
    return logit_of_log_prob(entire_space_log_prob(task, tasks, out))


def logit_of_log_prob(lp):
    """The logit log(p / (1 - p)) of a probability given as its log ``lp`` <= 0 (stable near 0 and 1)."""
    return lp - _log1mexp(lp)


def _entire_space_loss(task, tasks, out, labels):
    """BCE of the chain's product probability against the product of the chain's labels, every row."""
    import torch
    chain = chain_of(task, tasks)
    y = labels[task.label].float()
    for c in chain[:-1]:
        y = y * (labels[c.label].float() > 0.5)
    lp = entire_space_log_prob(task, tasks, out)
    return -(y * lp + (1 - y) * _log1mexp(lp)).mean() if len(y) else torch.zeros((), device=lp.device)


def task_losses(tasks, out, labels, mode: str = "conditional") -> dict:
    """{task: mean loss of the batch}: each task over its own space (`own_space`); with ``mode``
    "entire_space", a chained binary task's loss is that of its entire-space probability over every row."""
    if mode not in CHAIN_MODES:
        raise ValueError(f"chain training mode must be one of {CHAIN_MODES}, not {mode!r}")
    losses = {}
    for t in tasks:
        if mode == "entire_space" and t.type == "binary" and len(chain_of(t, tasks)) > 1:
            losses[t.name] = _entire_space_loss(t, tasks, out, labels)
        else:
            losses[t.name] = t.loss(out[t.name].float(), labels[t.label], own_space(t, labels))
    return losses


# ---- scoring -----------------------------------------------------------------------------------------
def entire_space(tasks, probs: dict) -> dict:
    """Per-task predictions (`TaskSpec.predict`: probabilities, values) with every chained binary task's
    probability multiplied along its chain (numpy arrays or tensors); other tasks unchanged."""
    res = dict(probs)
    for t in tasks:
        if t.type != "binary" or t.name not in probs:
            continue
        chain = chain_of(t, tasks)
        if len(chain) > 1 and all(c.name in probs for c in chain):
            p = probs[chain[0].name]
            for c in chain[1:]:
                p = p * probs[c.name]
            res[t.name] = p
    return res


def with_ancestors(names, tasks) -> list[str]:
    """``names`` plus the tasks their chains go through (what has to be computed to score them in
    the entire space), in the order of ``tasks``."""
    by_name = {t.name: t for t in tasks}
    want = {c.name for n in names if n in by_name for c in chain_of(by_name[n], tasks)}
    return [t.name for t in tasks if t.name in want] + [n for n in names if n not in by_name]


def scored(tasks, out: dict, names=None) -> dict:
    """{task: prediction} from the logits ``out`` (`TaskSpec.predict`) of ``names`` (default: every
    task in ``out``), a chained binary task's in the entire space (`entire_space`): the numbers a
    recommendation list ranks by. ``tasks``: every task of the model (the chains)."""
    specs = {t.name: t for t in tasks}
    need = with_ancestors([n for n in (names if names is not None else out) if n in specs], tasks)
    res = entire_space(tasks, {n: specs[n].predict(out[n].float()) for n in need if n in out})
    return {n: res[n] for n in (names if names is not None else need) if n in res}


def ranked_quantity(task, tasks) -> str:
    """The quantity a list ranks ``task`` by, in words: "p(interact ∧ like) = p(interact) · p(like |
    interact)" for a chained binary task, "p(click)" for another binary task, "the predicted rating"."""
    if task.type == "regression":
        return f"the predicted {task.name}"
    chain = chain_of(task, tasks)
    if task.type != "binary" or len(chain) == 1:
        return f"p({task.name})"
    return next(d for d in describe([*chain]) if d.startswith(f"p({' ∧ '.join(c.name for c in chain)})"))


# ---- the chain in words and pictures (Tasks & model, the report) ---------------------------------------
def as_specs(tasks) -> list:
    """Task dicts (the app's, a config's) or TaskSpecs as objects with ``name``, ``type``, ``given``."""
    from types import SimpleNamespace
    return [SimpleNamespace(name=str(t.get("name", "")), type=str(t.get("type", "binary")),
                            given=str(t.get("given") or "")) if isinstance(t, dict) else t for t in tasks]


def chain_dot(tasks) -> str | None:
    """A Graphviz DOT diagram of the chain (interact → like, interact → rating; each edge "given"),
    the unchained tasks beside it; None when no task is given another."""
    specs = as_specs(tasks)
    if not parents(specs):
        return None

    def q(s):
        return '"' + str(s).replace("\\", "\\\\").replace('"', '\\"') + '"'
    lines = ["digraph chain {", "  rankdir=LR;", '  node [shape=box, style="rounded", fontname="sans-serif"];',
             '  edge [fontname="sans-serif", fontsize=10];']
    lines += [f"  {q(t.name)} [label={q(f'{t.name} ({t.type})')}];" for t in specs]
    lines += [f"  {q(t.given)} -> {q(t.name)} [label=\"given\"];" for t in specs if getattr(t, "given", "")]
    return "\n".join(lines + ["}"])
