"""Multi-task architectures, chosen by name from `ARCHITECTURES`.

``build_model(arch, fields, tasks, **hparams)`` builds one; every model follows the
`MultiTaskModel` interface (``forward(features) -> {task: logits}``, ``embed``,
``forward_from_input`` (its ``network_from_input`` plus the pair terms of the options every
architecture has, ``MultiTaskModel.COMMON_HPARAMS``: `mtlrec.models.terms`), ``shared_representation``, ``task_parameters``, ``arch``,
``hparams``). To add an architecture: one file with a `MultiTaskModel` subclass,
plus one line in `ARCHITECTURES`.
"""
from __future__ import annotations

import inspect

from mtlrec.models.aitm import AITM
from mtlrec.models.base import FeatureInput, MultiTaskModel
from mtlrec.models.esmm import ESMM
from mtlrec.models.mmoe import MMoE
from mtlrec.models.ple import PLE
from mtlrec.models.shared_bottom import SharedBottom

ARCHITECTURES: dict[str, type[MultiTaskModel]] = {
    "shared_bottom": SharedBottom,
    "mmoe": MMoE,
    "ple": PLE,
    "esmm": ESMM,
    "aitm": AITM,
}

# one line of help per hyperparameter (forms, CLI docs)
HPARAM_HELP: dict[str, str] = {
    "shared_dims": "sizes of the shared layers H = ReLU(W_H X + b_H), e.g. 128, 64",
    "tower_dims": "hidden layer sizes of each task's tower (before its output layer)",
    "n_experts": "number of expert networks all tasks share",
    "expert_dims": "layer sizes of each expert network",
    "n_levels": "number of stacked extraction levels (CGC layers)",
    "n_shared_experts": "experts shared by all tasks, per level",
    "n_specific_experts": "experts owned by each task, per level",
    "calibrator_alpha": "α of AITM's behavioural expectation calibrator α·mean(max(p_task − p_parent, 0)), "
                        "which keeps a chained task's probability below its parent's (0 = off)",
    "dropout": "dropout rate after every hidden layer (0 = off)",
    "embedding_dim": "embedding size of every categorical feature (user id, item id, ...)",
    "embedding_std": "standard deviation of the normal every embedding row starts from (small values keep "
                     "rarely seen ids near zero)",
    "dense_proj_dim": "size of the learned projection of each text-embedding feature",
    "biases": "add a learned per-user and per-item bias (the last column of the user and item id "
              "embeddings) to the regression tasks' outputs, as matrix factorisation does",
    "interaction": "'dot': add the dot product of the user and item id embeddings to the regression tasks' "
                   "outputs (a multiplicative user × item term an MLP learns poorly); 'none': off",
    "id_dropout": "share of training rows whose user/item id is replaced by the unknown id, so that new "
                  "users/items (cold start) get a trained input (0 = off)",
}


# the choices of the text-valued hyperparameters, for forms
HPARAM_CHOICES: dict[str, tuple[str, ...]] = {"interaction": ("none", "dot")}

# (min, max, step) of the float hyperparameters, for forms
HPARAM_RANGES: dict[str, tuple[float, float, float]] = {
    "dropout": (0.0, 0.95, 0.05),
    "id_dropout": (0.0, 0.95, 0.05),
    "embedding_std": (0.0001, 1.0, 0.005),
    "calibrator_alpha": (0.0, 10.0, 0.1),
}


# keyword arguments set from other parts of the run config, not offered as hyperparameters
# (history_encoder: ``model.history.encoder``, see mtlrec.prep.history)
SET_ELSEWHERE = ("history_encoder",)


def architecture_hparams(arch: str) -> dict:
    """The hyperparameters of ``arch`` with their defaults (for forms and docs)."""
    cls = _lookup(arch)
    sig = inspect.signature(cls.__init__)
    own = {n: (list(p.default) if isinstance(p.default, tuple) else p.default)
           for n, p in sig.parameters.items() if p.kind is p.KEYWORD_ONLY and n not in SET_ELSEWHERE}
    return {**own, **cls.COMMON_HPARAMS}


def architecture_label(arch: str) -> str:
    """The name the app shows for ``arch`` (its class's ``label``, else the registry name)."""
    cls = ARCHITECTURES.get(arch)
    return (cls.label if cls is not None else "") or arch


def architecture_help() -> str:
    """One line per architecture: what it shares (the picker's help)."""
    return "; ".join(cls.description or name for name, cls in ARCHITECTURES.items())


def chain_note(arch: str, tasks) -> str | None:
    """What to tell a user who picks an architecture built for task chains (``chain_training`` is
    "entire_space": ESMM, AITM) while no task is given another (tasks: TaskSpecs or {name, given}
    dicts); None otherwise."""
    cls = ARCHITECTURES.get(arch)
    if cls is None or cls.chain_training != "entire_space":
        return None
    given = [t.get("given") if isinstance(t, dict) else getattr(t, "given", "") for t in tasks or []]
    if any(given):
        return None
    return (f"{architecture_label(arch)} is built for task chains (e.g. like given interact, trained over every "
            "row through p(interact) · p(like | interact)). No task here is given another, so it trains as one "
            "independent tower per task over the shared embedding. Make a task conditional on a binary task to "
            "use the entire-space training.")


def _lookup(arch: str) -> type[MultiTaskModel]:
    try:
        return ARCHITECTURES[arch]
    except KeyError:
        raise ValueError(f"unknown architecture '{arch}'; choose one of: {', '.join(ARCHITECTURES)}") from None


def build_model(arch: str, fields, tasks, **hparams) -> MultiTaskModel:
    """Build architecture ``arch`` over input ``fields`` with one tower per task.

    Unknown hyperparameters raise ValueError naming the ones ``arch`` accepts.
    """
    cls = _lookup(arch)
    allowed = architecture_hparams(arch)
    unknown = sorted(set(hparams) - set(allowed) - set(SET_ELSEWHERE))
    if unknown:
        raise ValueError(f"architecture '{arch}' has no hyperparameter(s) {unknown}; "
                         f"it accepts: {', '.join(allowed)}")
    common = {k: hparams.pop(k) for k in list(hparams) if k in cls.COMMON_HPARAMS}
    model = cls(fields, tasks, **hparams)
    model.set_pair_terms(**{**cls.COMMON_HPARAMS, **common})     # recorded in hparams, on or off
    return model


__all__ = ["ARCHITECTURES", "HPARAM_CHOICES", "HPARAM_HELP", "FeatureInput", "MultiTaskModel", "architecture_help",
           "architecture_hparams", "architecture_label", "build_model", "chain_note"]
