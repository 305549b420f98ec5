"""Data: upload or pick the sample, preview, column roles, validation, statistics, preprocessing."""
from __future__ import annotations

import dataclasses
import json

import streamlit as st

from mtlrec.data.files import UPLOAD_EXTENSIONS
from mtlrec.data.limits import upload_caption, upload_refused_text
from mtlrec.data.readers import reading_notes
from mtlrec.data.roles import OWNERS, ROLE_NAMES
from mtlrec.errors import DataError
from mtlrec.prep import config as prep_config
from mtlrec.prep import transforms as prep_transforms
from mtlrec.app import workflow
from mtlrec.app.workflow import (interest_choices, preparation_messages, roles_table,
                             spec_from_roles, split_column_choice, split_method_label)
from pages.ui.actions import handle_upload, load_sample_workspace, prepare_dataset
from pages.ui.dependence import show_label_dependence
from pages.ui.messages import md_text, msg_text, show_data_error, show_exception
from pages.ui.sessions import owned_cache
from pages.ui.state import ensure_app_navigation, get_state
from pages.ui.teaching import show_label_correlation
from pages.ui.upload_note import refusal_note

PREP_CHOICES = {"duplicates": prep_config.DUPLICATES, "missing_numeric": prep_config.MISSING_NUMERIC,
                "missing_categorical": prep_config.MISSING_CATEGORICAL, "split": prep_config.SPLITS,
                "missing_items": prep_config.MISSING_ITEMS, "negative_sampling": prep_config.NEGATIVE_SAMPLING}


# ---------------------------------------------------------------------------- source
def _source_section(state) -> None:
    """Sample or upload; stops the page until some data is loaded."""
    src = st.radio("Source", ["Sample data", "Upload files"], horizontal=True, key="data_source",
                   index=1 if state.raw is not None and not str(state.source).startswith("sample") else 0)
    if src == "Sample data":
        st.caption("1,000 users, 800 movies, 60,000 interactions with click, like, rating and watch fraction; "
                   "users (age, gender, occupation) and items (title, genres, description, year).")
        if st.button("Use the sample data", key="data_use_sample", icon=":material/dataset:"):
            if load_sample_workspace():
                st.rerun()
    else:
        _upload_section(state)

    if state.data_error is not None:
        show_data_error(state.data_error)

    if state.raw is None:
        st.info("Pick the sample or upload files to begin.")
        st.stop()


def _upload_section(state) -> None:
    """The file uploader: new files are read once (their names and sizes tell them apart)."""
    per_file_mb = float(st.get_option("server.maxUploadSize"))
    files = st.file_uploader(
        f"Interactions, plus optional users and items tables (up to {per_file_mb:.0f} MB per file) — CSV, TSV, "
        "Parquet, MovieLens (u.data, u.item, u.user; *.dat), RecBole (.inter, .user, .item) — or one zip of "
        "the dataset folder",
        type=list(UPLOAD_EXTENSIONS), accept_multiple_files=True, key="data_upload",
        help="Files are recognised by their content as well as their name; a zip of the downloaded "
             "dataset folder works too.")
    refusal_note(upload_refused_text(per_file_mb))
    st.caption(upload_caption(per_file_mb))
    if files:
        sig = tuple((f.name, f.size) for f in files)
        if sig != state.upload_sig:
            state.upload_sig = sig
            with st.spinner("Reading the files ..."):
                ok = handle_upload(files)
            if ok:
                st.rerun()      # the sidebar (drawn before this page) then shows the new dataset
        if state.raw is not None and state.data_error is None:
            notes = reading_notes(state.raw)
            if notes:
                st.caption("Read as: " + "; ".join(n.replace("_", "\\_").replace("*", "\\*") for n in notes))
    else:
        state.upload_sig = None


# ---------------------------------------------------------------------------- preview
def _preview_section(state, raw) -> None:
    """The first rows of each table, one tab per table."""
    st.subheader(f"Preview — {md_text(state.source)}")
    tables = [(name, getattr(raw, name)) for name in ("interactions", "users", "items")
              if getattr(raw, name, None) is not None]
    tabs = st.tabs([f"{name} ({len(df):,} rows)" for name, df in tables])
    for tab, (name, df) in zip(tabs, tables):
        with tab:
            st.dataframe(df.head(200), hide_index=True, height=240)


# ---------------------------------------------------------------------------- roles
def _roles_section(state, raw):
    """The column roles editor; returns the spec it gives (stops the page when it gives none)."""
    st.subheader("Column roles")
    st.caption("Suggested from the data; change any role. Labels become tasks; features get an owner "
               "(user, item, or context for per-interaction values). A list column such as genres "
               "(\"Action|Comedy\") is a **multi-valued** feature: the model reads the mean of its values' "
               "embeddings; choose label:multilabel to predict it instead.")
    base_table = roles_table(raw, state.suggested_spec or state.spec)
    edited = st.data_editor(
        base_table, hide_index=True, key=f"roles_{state.counter}", width="stretch",
        disabled=["column", "table", "example"],
        column_config={
            "role": st.column_config.SelectboxColumn("role", options=list(ROLE_NAMES), required=True),
            "owner": st.column_config.SelectboxColumn("owner", options=list(OWNERS), required=True),
        })
    try:
        spec = spec_from_roles(edited, multilabel_sep=getattr(state.spec, "multilabel_sep", "|") or "|")
    except DataError as e:
        show_data_error(e)
        st.stop()
    if spec != state.spec:
        state.spec = spec
        if state.prep is not None:      # a transform of a column that is no numeric feature any more goes
            state.prep = dataclasses.replace(
                state.prep, numeric_transforms=prep_transforms.for_columns(state.prep.numeric_transforms, spec))
        state.dataset = state.dataset_key = state.report = None   # roles changed: prepare again
    return spec


# ---------------------------------------------------------------------------- validation
def _validation_section(state, raw, spec, data_key: str) -> str:
    """Validates the data against the roles (once per data and roles); returns the report's key.
    Stops the page when the data does not validate."""
    st.subheader("Validation")
    report_key = f"{data_key}:{spec.to_json()}"
    if state.report is None or getattr(state, "report_key", None) != report_key:
        from mtlrec.data.validate import validate
        try:
            state.report = validate(raw, spec)
            state.validation_error = None
        except DataError as e:
            state.report, state.validation_error = None, e
        except Exception as e:
            state.report, state.validation_error = None, DataError(
                f"validation could not finish ({e.__class__.__name__}: {e})", fix="check the column roles")
        state.report_key = report_key
    if getattr(state, "validation_error", None) is not None:
        show_data_error(state.validation_error)
        st.stop()
    warnings = list(getattr(state.report, "warnings", []) or [])
    if warnings:
        st.warning(f"Valid, with {len(warnings)} warning(s).", icon=":material/warning:")
        for w in warnings:
            st.markdown(f"- {md_text(w)}")
    else:
        st.success("No problems found.", icon=":material/check_circle:")
    return report_key


# ---------------------------------------------------------------------------- statistics
def _statistics_section(raw, spec, data_key: str, report_key: str) -> dict:
    """Counts, label balance and distributions; returns the statistics (the preprocessing form's hints)."""
    st.subheader("Statistics")
    # shared by the sessions on this data (figures are not copied on each hit); freed when the last one ends
    stats = owned_cache(data_key, report_key, lambda: workflow.data_statistics(raw, spec))
    c = st.columns(4)
    c[0].metric("Interactions", f"{stats['n']:,}")
    c[1].metric("Users", f"{stats['users']:,}")
    c[2].metric("Items", f"{stats['items']:,}")
    c[3].metric("Density", f"{stats['density']:.2%}")
    figs = stats["figs"]
    col1, col2 = st.columns(2)
    if any(t == "binary" for t in spec.labels.values()):
        col1.plotly_chart(figs["balance"], key="fig_balance")
    hists = [k for k in figs if k.startswith("hist:")]
    if hists:
        col2.plotly_chart(figs[hists[0]], key="fig_hist0")
    col3, col4 = st.columns(2)
    if "user" in figs:
        col3.plotly_chart(figs["user"], key="fig_user")
    if "item" in figs:
        col4.plotly_chart(figs["item"], key="fig_item")
    for i, k in enumerate(hists[1:]):
        st.plotly_chart(figs[k], key=f"fig_hist{i + 1}")
    return stats


# ---------------------------------------------------------------------------- preprocessing
def _bound_text(v) -> str:
    return "" if v is None else f"{v:g}"


def _transform_inputs(prep, spec, hints: dict, ctr: int) -> dict:
    """The numeric transforms part of the preprocessing form: a method and bounds per numeric feature
    (``ctr``: the state's counter in the widget keys)."""
    cols = prep_transforms.transformable_columns(spec)
    if not cols:
        return {}
    st.markdown("**Numeric transforms** (outliers and skew)")
    st.caption("Per numeric feature: **clip** to bounds in the column's units (empty: the training minimum / "
               "maximum), **winsorise** to quantiles (empty: 0.01 / 0.99), or **log1p** for skewed amounts "
               "(values ≥ 0). Fitted on the train split only and applied to valid and test; labels keep their scale.")
    out = {}
    for col in cols:
        cur = prep.numeric_transforms.get(col) or {}
        method = cur.get("method", "none")
        c = st.columns([2, 2, 1, 1])
        c[0].markdown(md_text(col))
        if col in hints:
            c[0].caption(md_text(hints[col]))
        opts = list(prep_transforms.TRANSFORMS)
        m = c[1].selectbox(f"transform of {md_text(col)}", opts, index=opts.index(method),
                           key=f"prep_tf_{col}_{ctr}", label_visibility="collapsed")
        lo = c[2].text_input(f"lower bound of {md_text(col)}", value=_bound_text(cur.get("lower")), placeholder="lower",
                             key=f"prep_tf_lower_{col}_{ctr}", label_visibility="collapsed")
        hi = c[3].text_input(f"upper bound of {md_text(col)}", value=_bound_text(cur.get("upper")), placeholder="upper",
                             key=f"prep_tf_upper_{col}_{ctr}", label_visibility="collapsed")
        if m in ("clip", "winsorise"):
            out[col] = {"method": m, "lower": lo.strip() or None, "upper": hi.strip() or None}
        elif m != "none":
            out[col] = m
    return out


def _option_inputs(prep, split_choice: dict, ctr: int) -> tuple[dict, str | None]:
    """One widget per preprocessing option (but the numeric transforms), three to a row; returns the
    values read and the message of an option whose JSON does not parse (None if all do)."""
    values = {}
    bad_json = None
    cols = st.columns(3)
    for i, f in enumerate(f for f in dataclasses.fields(prep) if f.name not in ("numeric_transforms", "interest_labels")):
        v = getattr(prep, f.name)
        label = f.name.replace("_", " ")
        box = cols[i % 3]
        key = f"prep_{f.name}_{ctr}"
        if f.name == "split":
            opts = list(PREP_CHOICES[f.name])
            values[f.name] = box.selectbox(label, opts, index=opts.index(v) if v in opts else 0, key=key,
                                           format_func=lambda m: split_method_label(m, split_choice["column"]),
                                           help="column: a predefined split, the rows of the split column "
                                                "say train / valid / test (valid is carved from train if absent)")
        elif f.name == "split_column":
            opts = [""] + split_choice["columns"]
            values[f.name] = box.selectbox(label, opts, index=opts.index(split_choice["column"]), key=key,
                                           format_func=lambda c: c or "(none)",
                                           help="the interactions column of the split 'column'")
        elif f.name in PREP_CHOICES:
            opts = list(PREP_CHOICES[f.name])
            values[f.name] = box.selectbox(label, opts, index=opts.index(v) if v in opts else 0, key=key)
        elif isinstance(v, bool):
            values[f.name] = box.checkbox(label, value=v, key=key)
        elif isinstance(v, int):
            values[f.name] = int(box.number_input(label, value=v, step=1, key=key))
        elif isinstance(v, float):
            values[f.name] = float(box.number_input(label, value=v, format="%.4g", key=key))
        elif isinstance(v, str):
            values[f.name] = box.text_input(label, value=v, key=key)
        elif isinstance(v, (list, dict)):
            txt = box.text_input(f"{label} (JSON)", value=json.dumps(v), key=key,
                                 help='e.g. [{"name": "like", "source": "rating", "op": ">=", "threshold": 4}]')
            try:
                values[f.name] = json.loads(txt or "[]")
            except json.JSONDecodeError as e:
                bad_json = f"{label}: not valid JSON ({e.msg})"
    return values, bad_json


def _interest_inputs(prep, raw, spec, ctr: int) -> list:
    """User-level interest mining: one checkbox per item attribute with classes ("user interests over
    genres"), the window and the positives; returns the ``interest_labels`` option."""
    ch = interest_choices(spec, raw, prep)
    if not ch["attributes"]:
        return []
    st.markdown("**User interests** — a label per row: the share of each class of an item attribute among the "
                "user's next positives (interest mining: a prediction about the user; a task of type "
                "*distribution* learns it on Tasks & model).")
    cols = st.columns(3)
    picked = [a for i, a in enumerate(ch["attributes"])
              if cols[i % 3].checkbox(f"user interests over {a}", value=a in ch["chosen"], key=f"prep_interest_{a}_{ctr}",
                                      help=f"adds the label '{ch['names'][a]}' (a distribution over the classes of {a})")]
    c1, c2 = st.columns(2)
    window = int(c1.number_input("interest window (next positives)", min_value=1, value=int(ch["window"]), step=1,
                                 key=f"prep_interest_window_{ctr}",
                                 help="how many of the user's next positives after each row make its interest label"))
    positive = c2.selectbox("positives", ch["positives"], key=f"prep_interest_positive_{ctr}",
                            index=ch["positives"].index(ch["positive"]) if ch["positive"] in ch["positives"] else 0,
                            format_func=lambda n: f"rows where {n} = 1" if n else "every interaction",
                            help="which interactions count as the user's positives")
    return [{"name": (ch["chosen"].get(a) or {}).get("name") or ch["names"][a], "attribute": a, "window": window,
             "positive": positive} for a in picked]


def _preprocessing_section(state, raw, spec, stats: dict) -> None:
    """The preprocessing form; Prepare takes its options and prepares the dataset."""
    st.subheader("Preprocessing")
    prep = state.prep
    split_choice = split_column_choice(raw, prep)
    if split_choice["candidates"] and prep.split != "column":
        st.info(f"The column {md_text(split_choice['candidates'][0])} holds train / valid / test: choose the split "
                f"**{md_text(split_method_label('column', split_choice['candidates'][0]))}** to use it.",
                icon=":material/call_split:")
    with st.form(f"prep_form_{state.counter}", border=True):
        st.caption("How the data is cleaned, encoded and split into train / valid / test.")
        values, bad_json = _option_inputs(prep, split_choice, state.counter)
        values["numeric_transforms"] = _transform_inputs(prep, spec, stats.get("transform_hints") or {},
                                                         state.counter)
        values["interest_labels"] = _interest_inputs(prep, raw, spec, state.counter)
        submitted = st.form_submit_button("Prepare", type="primary", icon=":material/construction:")
    if submitted and bad_json:
        st.error(bad_json)
    elif submitted:
        try:
            state.prep = dataclasses.replace(prep, **values)
        except (TypeError, ValueError) as e:
            show_exception(e, "Setting the options")
        else:
            if prepare_dataset():
                st.rerun()      # the sidebar (drawn before this page) then shows the prepared dataset


def _prepared_section(state) -> None:
    """What preparing gave: row counts, warnings, notes, the transforms' changes, the report."""
    ds = state.dataset
    sizes = ", ".join(f"{s} {ds.n_rows(s):,}" for s in ds.splits)
    st.success(f"Prepared: {sizes} rows; {len(ds.fields)} input fields; labels "
               f"{md_text(', '.join(lab.name for lab in ds.labels))}. Next: **Tasks & model**.",
               icon=":material/task_alt:")
    rep = ds.meta.get("report")
    msgs = preparation_messages(rep)
    for w in msgs["warnings"]:
        st.warning(msg_text(w), icon=":material/warning:")
    for line in msgs["notes"] + msgs["dropped"]:
        st.caption(msg_text(line))
    changed = prep_transforms.report_rows(rep)
    if changed:
        st.caption("Numeric transforms — what was changed (bounds fitted on the train split):")
        st.dataframe(changed, hide_index=True)
    if rep:
        with st.expander("Preparation report"):
            st.json(rep, expanded=False)
    # ------------------------------------------------------------ label correlation (issue 14 §5)
    show_label_correlation(ds)


def render() -> None:
    """The Data page: each section in turn (a section may stop the page until its input is valid)."""
    ensure_app_navigation()
    state = get_state()
    st.title("Data")
    _source_section(state)
    raw = state.raw
    data_key = state.data_uid      # unique per loaded data: the statistics cache is shared by sessions
    _preview_section(state, raw)
    spec = _roles_section(state, raw)
    report_key = _validation_section(state, raw, spec, data_key)
    stats = _statistics_section(raw, spec, data_key, report_key)
    show_label_dependence()     # e.g. the genres of the clicked movie: item classification, not user interest
    _preprocessing_section(state, raw, spec, stats)
    if state.dataset is not None:
        _prepared_section(state)


render()
