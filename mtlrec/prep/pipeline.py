"""``prepare(raw, spec, config)``: validated raw tables -> a model-ready PreparedDataset.

Steps (all vectorised; no Python loop over rows):

1. validate (``mtlrec.data.validate``), which may drop interactions of unknown items;
2. ids -> user / item table positions (the users/items tables first, then ids seen only in
   the interactions);
3. labels per row (columns of the users/items tables are joined through the ids), derived
   labels, rows with a missing label dropped (counted in the report);
4. duplicate (user, item) pairs: keep last / first, or aggregate;
5. split: random, per-user temporal, item cold-start, or predefined (a column of train / valid /
   test names, e.g. from one file per split; valid carved from train when it has no rows);
6. fit every statistic on the training rows only (numeric transforms: clip / winsorise / log1p,
   ``mtlrec.prep.transforms``; numeric fill values and mean/std, category / id vocabularies,
   multi-label classes) and encode all rows (unseen -> 0); the interest labels (a user's
   interest distribution over an item attribute, ``mtlrec.prep.interest``);
7. negative sampling (implicit feedback) per split, never a known positive of any split (valid and
   test fixed by the seed; training negatives drawn anew each epoch by the trainer);
8. text columns -> one text per item (user) -> ``text_encoder`` -> dense "item_text" field.

Every prepared row keeps its ``row_id``: its 0-based position in the interactions as read (for
several split files, in their concatenation train, valid, test; ``meta["row_sources"]`` says
which file each range of row_ids came from); sampled negatives have row_id -1. The report lists
the rows dropped by cleaning by row_id (``report["dropped_rows"]``).

Where the steps live: 1-4 ``mtlrec.prep.clean``, 5 ``splits``, 6 ``encode`` (with ``encoders`` and
``transforms``), 7 ``assemble`` (with ``negatives``; it also builds the PreparedDataset and the
report's tables), 8 ``text_features``. They share one ``mtlrec.prep.state.Preparation``.
"""
from __future__ import annotations

import time
from typing import Callable

from mtlrec.dataset import PreparedDataset
from mtlrec.prep import assemble, clean, encode, interest, splits, text_features
from mtlrec.prep.config import PrepConfig


def label_types(spec, config=None) -> dict[str, str]:
    """The labels `prepare` gives (name -> task type), known before preparing: the spec's labels,
    the derived labels of ``config`` (binary), its interest labels (distribution) and, with negative sampling, the implicit-feedback
    label ("interaction" when the data has no binary label, else ``config.negative_label``). Pages use
    it to offer a task on a derived label before (or without) a prepared dataset."""
    config = config if config is not None else PrepConfig()
    out = {str(k): str(v) for k, v in spec.labels.items()}
    for d in config.derived_labels:
        out.setdefault(str(d["name"]), "binary")
    for d in config.interest_labels:
        out.setdefault(str(d["name"]), "distribution")
    if float(config.negative_ratio) > 0:
        neg = config.negative_label or ("" if "binary" in out.values() else "interaction")
        if neg:
            out.setdefault(neg, "binary")
    return out


def prepare(raw, spec, config: PrepConfig | dict | None = None, *, text_encoder: Callable | None = None,
            progress: Callable[[str, float], None] | None = None, validation=None,
            release_input: bool = False) -> PreparedDataset:
    """Clean, split, encode and (optionally) add text features. Raises DataError for bad data.

    ``text_encoder``: callable ``list[str] -> float32 [n, d]`` (e.g. ``mtlrec.serve.text.TextEncoder``),
    called once with the distinct item (user) texts. ``progress(stage, fraction)``: optional.
    ``validation``: the ValidationReport of ``validate(raw, spec, missing_items=config.missing_items)``
    when the caller already has it (saves validating twice). ``release_input``: the caller will not
    use ``raw.interactions`` again (the command line): it is replaced by ever narrower frames as
    its columns are turned into arrays (ids, times and labels first, then the features, each
    group in one step), which lowers the peak memory on large data (the table is otherwise held
    for the whole preparation next to the arrays built from it).

    The steps share one :class:`~mtlrec.prep.state.Preparation` (arrays, report, timing); each
    stage ends with ``progress(stage, fraction)``."""
    if config is None:
        config = PrepConfig()
    elif isinstance(config, dict):
        config = PrepConfig.from_dict(config)
    t_start = time.perf_counter()
    if progress is not None:
        progress("validate", 0.0)
    p = clean.start(raw, spec, config, t_start=t_start, progress=progress, validation=validation,
                    release_input=release_input)
    p.stage("validate", 0.1)

    clean.index_ids(p)              # ids -> table positions, timestamps, predefined split codes
    clean.extract_labels(p)         # labels per row (user/item-table labels gathered to rows)
    clean.derive_labels(p)
    clean.release_read_columns(p)
    clean.implicit_label(p)         # negative sampling: the implicit-feedback label
    clean.drop_missing_labels(p)
    clean.drop_duplicates(p)
    clean.keep_label_rows(p)
    p.stage("clean", 0.25)

    splits.split_rows(p)
    p.stage("split", 0.35)

    encode.encode_features(p)       # statistics from the training rows only
    encode.encode_labels(p)
    interest.add_interest_labels(p)     # user interests over an item attribute (labels may look ahead)
    p.stage("encode", 0.55)

    assemble.rows_and_negatives(p)
    p.stage("rows_and_negatives", 0.7)

    text_features.add_text_features(p, text_encoder)
    p.stage("text", 0.95)

    ds = assemble.build_dataset(p)
    p.stage("done", 1.0)
    return ds
