"""Tasks & model: tasks with loss weights and metrics, weighting strategy, architecture, hyperparameters,
training settings, device and language-model text features."""
from __future__ import annotations

import functools
import uuid

import streamlit as st

from mtlrec.figures import charts as viz
from mtlrec.config import (DEFAULT_ARCH, HISTORY_DEFAULT_LENGTH, HISTORY_ENCODERS, HISTORY_MAX_LENGTH,
                           EarlyStoppingConfig)
from mtlrec.models import (HPARAM_CHOICES, HPARAM_HELP, HPARAM_RANGES, architecture_help, architecture_hparams,
                           architecture_label, chain_note)
from mtlrec.tasks import DEFAULT_METRIC, TASK_TYPES
from mtlrec.app.workflow import DEFAULT_TRAIN, architectures, available_labels, metrics_for, text_candidates
from pages.ui.actions import prepare_dataset
from pages.ui.chain import given_choice, offer_recommended_chain, show_chain
from pages.ui.dependence import task_dependence_warning
from pages.ui.formulas import show_equations
from pages.ui.messages import md_text
from pages.ui.sidebar import device_label
from pages.ui.state import ensure_app_navigation, get_state, keep, need_data
from pages.ui.weighting import weighting_choice



def steps_line(tr: dict, dataset) -> str:
    """What the training settings mean in gradient steps (echoes the values the app has taken)."""
    n = dataset.n_rows("train") if dataset is not None and "train" in dataset.splits else None
    per_epoch = f" of {n:,} rows: {-(-n // tr['batch_size']):,} steps each" if n else ""
    return (f"At most {tr['epochs']:,} epochs{per_epoch}, in batches of {tr['batch_size']:,} rows, "
            f"at learning rate {tr['lr']:g}.")


def layer_sizes(text: str) -> list[int]:
    """"64, 32" -> [64, 32]; ValueError for anything but whole numbers separated by commas."""
    return [int(x) for x in str(text).replace(" ", "").split(",") if x]


def train() -> dict:
    """The training settings as they are when a change arrives (the target of ``keep``)."""
    return get_state().train


def arch_hparams(arch: str) -> dict:
    """The kept hyperparameters of ``arch`` when a change arrives (a throwaway dict once another is chosen);
    the target of ``keep`` through ``functools.partial(arch_hparams, arch)``."""
    model = get_state().model
    return model if model.get("arch", DEFAULT_ARCH) == arch else {}


# ---------------------------------------------------------------------------- tasks
def _tasks_section(state, labels: dict, ctr: int) -> None:
    """One row per task, Add task, and what is wrong with the tasks as they stand."""
    st.subheader("Tasks")
    st.caption("Each task learns one label. The loss weight says how much the task pulls on the shared "
               "representation (used as is by static weighting; adaptive strategies learn the balance).")
    if offer_recommended_chain(state, key="task_recommended_chain"):
        prepare_dataset()
        st.rerun()
    for t in state.tasks:
        t.setdefault("_uid", uuid.uuid4().hex[:8])

    remove = None
    for i, t in enumerate(state.tasks):
        if _task_row(state, t, labels, ctr):
            remove = i
    if remove is not None:
        state.tasks.pop(remove)
        st.rerun()
    _add_task(state, labels)
    show_chain(state.tasks)
    _task_problems(state, labels)


def _task_row(state, t: dict, labels: dict, ctr: int) -> bool:
    """The widgets of task ``t``, written into it; True when the visitor asked to remove it."""
    uid = t["_uid"]
    remove = False
    c = st.columns([2, 2, 2, 3, 2, 2, 1], vertical_alignment="bottom")
    t["name"] = c[0].text_input("Task name", value=t.get("name", ""), key=f"task_name_{uid}_{ctr}", on_change=keep(f"task_name_{uid}_{ctr}", t, "name"),
                                help="a name for this task, shown in results and recommendations")
    t["type"] = c[1].selectbox("Type", TASK_TYPES, index=TASK_TYPES.index(t.get("type", "binary")),
                               key=f"task_type_{uid}_{ctr}",
                               help="binary: yes/no (click); regression: a number (rating); multilabel: "
                                    "several classes at once (an item's genres: item classification); distribution: "
                                    "a share per class (a user's interests over genres: interest mining, add the "
                                    "label on Data)")
    opts = [n for n, tt in labels.items() if tt == t["type"]]
    if t.get("label") and t["label"] not in labels:     # kept and shown as missing, never replaced unasked
        opts.append(t["label"])
    if opts:
        cur = t.get("label") if t.get("label") in opts else opts[0]
        t["label"] = c[2].selectbox("Label", opts, index=opts.index(cur), key=f"task_label_{uid}_{t['type']}_{ctr}",
                                    format_func=lambda n: n if n in labels else f"{n} (not in the data)",
                                    help="the column (label role on Data) this task learns to predict")
    else:       # shown, never written into the task
        c[2].selectbox("Label", [f"(no {t['type']} label)"], disabled=True, key=f"task_label_{uid}_{t['type']}_{ctr}",
                       help=f"the data has no {t['type']} label: change the task's type, or give a column "
                            "that label role (or add a derived label) on Data")
    t["weight"] = c[3].slider("Loss weight", 0.0, 5.0, float(t.get("weight", 1.0)), 0.1,
                              key=f"task_weight_{uid}_{ctr}", on_change=keep(f"task_weight_{uid}_{ctr}", t, "weight", float),
                              help="w_i in the loss L = Σ_i w_i L_i + …: how much this task pulls on the "
                                   "shared layers")
    mopts = metrics_for(t["type"])
    mcur = t.get("metric") if t.get("metric") in mopts else DEFAULT_METRIC[t["type"]]
    t["metric"] = c[4].selectbox("Metric", mopts, index=mopts.index(mcur), key=f"task_metric_{uid}_{t['type']}_{ctr}",
                                 help="how this task is scored on the validation and test splits")
    given = given_choice(t, state.tasks, c[5], key=f"task_given_{uid}_{ctr}")
    if given:
        t["given"] = given
    else:
        t.pop("given", None)            # unconditional: no key (a visit that changes nothing saves nothing)
    if c[6].button("", icon=":material/delete:", key=f"task_del_{uid}_{ctr}", help="Remove this task"):
        remove = True
    if task_dependence_warning(t, key=f"task_dep_drop_{uid}_{ctr}"):   # item / user classification
        remove = True
    return remove


def _add_task(state, labels: dict) -> None:
    """Add task: a task on the first label without one (off, with the reason, when there is none)."""
    free = [n for n in labels if n not in {t.get("label") for t in state.tasks}]
    no_add = None if free else ("every label already has a task" if labels else "the data has no label yet")
    if st.button("Add task", icon=":material/add:", key="task_add", disabled=not free,
                 help=f"Off: {no_add}" if no_add else f"a task on the label {free[0]}"):
        name = free[0]
        ttype = labels[name]
        state.tasks.append({"name": name, "type": ttype, "label": name, "weight": 1.0,
                            "metric": DEFAULT_METRIC[ttype], "_uid": uuid.uuid4().hex[:8]})
        st.rerun()
    if no_add:
        st.caption(f"Add task is off: {no_add}. A new task needs a label of its own: give a column a label role "
                   "or add a derived label (e.g. like = rating ≥ 4) or a user-interest label on **Data**.")


def _task_problems(state, labels: dict) -> None:
    """No task, duplicate names, and tasks whose label is missing or of another type."""
    names = [t["name"] for t in state.tasks]
    if not state.tasks:
        st.warning("Add at least one task.")
    elif len(set(names)) != len(names):
        st.error("Task names must be unique.")
    for t in state.tasks:
        lab = t.get("label")
        if labels.get(lab) != t.get("type"):
            is_what = f"is a {labels[lab]} label" if lab in labels else "is not in the data"
            st.error(f"Task {md_text(t.get('name'))} needs a {t.get('type')} label, and its label {md_text(lab)} "
                     f"{is_what}: change the task's type or label, or give a column that label role on Data.")


# ---------------------------------------------------------------------------- architecture
def _architecture_section(state, ctr: int) -> tuple[str, dict]:
    """The architecture, its hyperparameters and its diagram; returns (architecture, hyperparameters)."""
    st.subheader("Architecture")
    archs = architectures()
    names = [t["name"] for t in state.tasks]
    left, right = st.columns([2, 3], gap="large")
    with left:
        arch = state.model.get("arch", DEFAULT_ARCH)
        arch = st.selectbox("Architecture", archs, index=archs.index(arch) if arch in archs else 0,
                            key=f"arch_{ctr}",
                            format_func=architecture_label, help=architecture_help())
        note = chain_note(arch, state.tasks)
        if note:
            st.info(note, icon=":material/link:")
        defaults = architecture_hparams(arch)
        hp = _hparam_inputs(state, arch, defaults, ctr)
        history = _history_inputs(state, ctr)
        # only what differs from the architecture's defaults: a visit that changes nothing saves nothing
        # (a second tab on the workspace would otherwise be told of a change nobody made)
        state.model = {"arch": arch, **{k: v for k, v in hp.items() if v != defaults[k]},
                       **({"history": history} if history else {})}
    with right:
        st.graphviz_chart(viz.arch_dot(arch, names, hp, parents={t.get("name"): t.get("given") for t in state.tasks
                                                                 if t.get("given")}), width="stretch")
    return arch, hp


def _hparam_inputs(state, arch: str, defaults: dict, ctr: int) -> dict:
    """One input per hyperparameter of ``arch`` (the kept value, else the default); returns their values."""
    hp = {}
    target = functools.partial(arch_hparams, arch)
    for name, default in defaults.items():
        cur = state.model.get(name, default) if state.model.get("arch") == arch else default
        key = f"hp_{arch}_{name}_{ctr}"
        label = name.replace("_", " ")
        if isinstance(default, list):
            txt = st.text_input(f"{label} (layer sizes)", ", ".join(str(x) for x in cur), key=key,
                                on_change=keep(key, target, name, layer_sizes), help=HPARAM_HELP.get(name))
            try:
                hp[name] = layer_sizes(txt)
            except ValueError:
                st.error(f"{label}: give whole numbers separated by commas, e.g. 64, 32")
                hp[name] = list(default)
        elif isinstance(default, bool):
            hp[name] = st.checkbox(label, value=bool(cur), key=key, on_change=keep(key, target, name, bool),
                                   help=HPARAM_HELP.get(name))
        elif isinstance(default, str):
            choices = list(HPARAM_CHOICES.get(name, (default,)))
            hp[name] = st.selectbox(label, choices, index=choices.index(cur) if cur in choices else 0, key=key,
                                    on_change=keep(key, target, name, str), help=HPARAM_HELP.get(name))
        elif isinstance(default, int):
            hp[name] = int(st.number_input(label, min_value=0, value=int(cur), step=1, key=key,
                                           on_change=keep(key, target, name, int), help=HPARAM_HELP.get(name)))
        elif isinstance(default, float):
            lo, hi, step = HPARAM_RANGES.get(name, (0.0, 0.95, 0.05))
            hp[name] = float(st.number_input(label, min_value=lo, max_value=hi, value=min(max(float(cur), lo), hi),
                                             step=step, format="%.4f" if step < 0.01 else "%.2f", key=key,
                                             on_change=keep(key, target, name, float),
                                             help=HPARAM_HELP.get(name)))
    return hp


HISTORY_DEFAULT = {"length": HISTORY_DEFAULT_LENGTH, "encoder": "attention"}
HISTORY_HELP = {"on": "each row also sees the user's last N interactions before it (their items and the ratings "
                      "given), built without leakage; explanations can then name the user's own items "
                      "(\"because you rated Casablanca 5★\"). Needs user and item ids.",
                "length": "how many of the user's most recent interactions each row sees (1-200)",
                "encoder": "mean: the average of the history items' embeddings; attention (DIN, Zhou et al. 2018): "
                           "a weighted average whose weights depend on the candidate item, so the items most "
                           "like the candidate count most"}


def model_history() -> dict:
    """The kept history setting when a change arrives (the target of ``keep``)."""
    return get_state().model.setdefault("history", dict(HISTORY_DEFAULT))


def _history_toggled(key: str):
    def commit() -> None:
        model = get_state().model
        if st.session_state.get(key):
            model.setdefault("history", dict(HISTORY_DEFAULT))
        else:
            model.pop("history", None)
    return commit


def _history_inputs(state, ctr: int) -> dict | None:
    """The behaviour-history input (``model.history``): on/off, length, encoder; None when off."""
    cur = state.model.get("history")
    ids = bool(getattr(state.spec, "user_id", None)) and bool(getattr(state.spec, "item_id", None))
    key = f"hist_on_{ctr}"
    on = st.checkbox("Use the user's behaviour history", value=cur is not None and ids, key=key,
                     on_change=_history_toggled(key), disabled=not ids,
                     help=HISTORY_HELP["on"] if ids else "needs a user id and an item id column (Data page)")
    if not on:
        return None
    cur = {**HISTORY_DEFAULT, **(cur or {})}
    c1, c2 = st.columns(2)
    length = int(c1.number_input("History length", 1, HISTORY_MAX_LENGTH, int(cur["length"]), 1, key=f"hist_len_{ctr}",
                                 on_change=keep(f"hist_len_{ctr}", model_history, "length", int),
                                 help=HISTORY_HELP["length"]))
    encoder = c2.selectbox("History encoder", list(HISTORY_ENCODERS), index=list(HISTORY_ENCODERS).index(cur["encoder"]),
                           key=f"hist_enc_{ctr}", on_change=keep(f"hist_enc_{ctr}", model_history, "encoder"),
                           help=HISTORY_HELP["encoder"])
    return {"length": length, "encoder": encoder}


# ---------------------------------------------------------------------------- training settings
def _training_section(state, ctr: int) -> dict:
    """Epochs, batch size, learning rate, regularisation, seed, early stopping and device, written into
    the state's training settings; returns them."""
    st.subheader("Training")
    tr = state.train
    _optimiser_inputs(tr, ctr)
    st.caption(steps_line(tr, state.dataset))
    es = dict(tr.get("early_stopping") or {})
    patience = int(st.number_input("Early-stopping patience (epochs without improvement on the first task's "
                                   "validation metric; 0 = off)", 0, 100,
                                   int(es.get("patience", EarlyStoppingConfig().patience)), key=f"tr_pat_{ctr}",
                                   help="how many epochs to wait for the validation metric to improve before "
                                        "stopping; the best epoch's model is kept"))
    if es or patience != EarlyStoppingConfig().patience:     # the default is not written in on a mere visit
        tr["early_stopping"] = {**es, "patience": patience}
    from mtlrec.device import available_devices

    devs = ["auto"] + available_devices()
    tr["device"] = st.selectbox("Device", devs, index=devs.index(tr.get("device", "auto")) if tr.get("device", "auto") in devs else 0,
                                key=f"tr_dev_{ctr}", help="auto: a GPU when there is one, else the CPU")
    st.info(f"Training will run on: **{device_label() if tr['device'] == 'auto' else tr['device'].upper()}**",
            icon=":material/memory:")
    return tr


def _optimiser_inputs(tr: dict, ctr: int) -> None:
    """The six numbers of a run in one row, each kept by ``keep`` (through `train`) when it changes."""
    D = DEFAULT_TRAIN                                     # the library's defaults (mtlrec.config.TrainConfig)
    c = st.columns(6)
    tr["epochs"] = int(c[0].number_input("Epochs", 1, 500, int(tr.get("epochs", D["epochs"])), key=f"tr_epochs_{ctr}",
                                         on_change=keep(f"tr_epochs_{ctr}", train, "epochs", int),
                                         help="the most epochs a run may take; early stopping on the validation "
                                              "split usually ends it well before"))
    tr["batch_size"] = int(c[1].number_input("Batch size", 16, 65536, int(tr.get("batch_size", D["batch_size"])), step=256,
                                              key=f"tr_bs_{ctr}", on_change=keep(f"tr_bs_{ctr}", train, "batch_size", int),
                                              help="rows per gradient step"))
    tr["lr"] = float(c[2].number_input("Learning rate", 1e-5, 1.0, float(tr.get("lr", D["lr"])), format="%.4f",
                                       step=0.0005, key=f"tr_lr_{ctr}", on_change=keep(f"tr_lr_{ctr}", train, "lr", float),
                                       help="Adam's step size"))
    tr["l2"] = float(c[3].number_input("L2 on task towers", 0.0, 1.0, float(tr.get("l2", D["l2"])), format="%.5f",
                                       step=0.0001, key=f"tr_l2_{ctr}", on_change=keep(f"tr_l2_{ctr}", train, "l2", float),
                                       help="λ of λ·Σᵢ‖θᵢ‖² over the task towers' parameters θᵢ (article §4.2)"))
    tr["embedding_l2"] = float(c[4].number_input("L2 on embeddings", 0.0, 1.0, float(tr.get("embedding_l2", D["embedding_l2"])),
                                                 format="%.5f", step=0.0001, key=f"tr_el2_{ctr}",
                                                 on_change=keep(f"tr_el2_{ctr}", train, "embedding_l2", float),
                                                 help="μ of μ·‖E‖² over the embedding table (user/item ids and "
                                                      "categorical features); keeps rarely seen ids near zero"))
    tr["seed"] = int(c[5].number_input("Seed", 0, 10**6, int(tr.get("seed", D["seed"])), key=f"tr_seed_{ctr}",
                                       on_change=keep(f"tr_seed_{ctr}", train, "seed", int),
                                       help="seeds the initial weights and the batch order: the same seed and "
                                            "settings give the same run"))


# ---------------------------------------------------------------------------- language-model features
def _text_section(state, ctr: int) -> None:
    """Sentence embeddings of the text columns as model inputs: on / off, which columns, encode now."""
    st.subheader("Language-model features")
    cands = text_candidates(state.raw, state.spec)
    txt = state.text
    txt["enabled"] = st.toggle("Use language-model features (all-MiniLM-L6-v2 sentence embeddings of item/user text)",
                               value=bool(txt.get("enabled")), key=f"text_on_{ctr}", disabled=not cands)
    if not cands:
        st.caption("This data has no text columns (give a column the role 'text' on Data).")
    if txt["enabled"]:
        sel = [c for c in (txt.get("columns") or [c for c in cands if c in state.spec.text] or list(cands))
               if c in cands]
        txt["columns"] = st.multiselect("Text columns", list(cands), default=sel, key=f"text_cols_{ctr}",
                                        format_func=lambda c: f"{c} ({cands[c]})")
        st.caption("Texts are encoded once (cached on disk) and enter the model through a learned projection; "
                   "items never seen in training still get a meaningful input.")
        if st.button("Encode texts now", icon=":material/translate:", key="text_encode"):
            prepare_dataset()
    if state.dataset is not None and state.text.get("enabled") and any(f.kind == "dense" for f in state.dataset.fields):
        st.success("Text embeddings are part of the prepared dataset.")


def render() -> None:
    """The Tasks & model page."""
    ensure_app_navigation()
    state = get_state()
    st.title("Tasks & model")
    if not need_data("Tasks & model"):
        st.stop()

    labels = available_labels(state.spec, state.dataset, state.prep)   # derived labels known before Prepare
    ctr = state.counter
    _tasks_section(state, labels, ctr)
    state.train["weighting"] = weighting_choice(state.train.get("weighting", "static"), key=f"weighting_{ctr}")
    arch, hp = _architecture_section(state, ctr)
    # ------------------------------------------------------------ equations (issue 14 §4)
    # (drawn after the Training settings below, so that λ and μ are this run's; placeholder keeps the place)
    equations_box = st.container()
    tr = _training_section(state, ctr)
    with equations_box:
        show_equations(arch, hp, state.tasks, tr, state.dataset)
    _text_section(state, ctr)
    st.divider()
    st.page_link("pages/train.py", label="Next: Train", icon=":material/arrow_forward:")


render()
