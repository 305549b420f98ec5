"""Language-model text features: the text columns of each item (user) joined into one text, each
distinct text encoded once by a text encoder, as a dense "item_text" ("user_text") field.
"""
from __future__ import annotations

import inspect
import time

import numpy as np

from mtlrec.dataset import FeatureField
from mtlrec.prep.state import Preparation


def add_text_features(p: Preparation, text_encoder) -> None:
    """With ``text_encoder``: per owner (items, then users) with text columns, the dense field of
    its texts' vectors in the owner's table; reported per field (columns, dim, texts, model)."""
    spec, tables, progress = p.spec, p.tables, p.progress
    text_report = {}
    if text_encoder is not None:
        for owner, ids_len in (("item", p.n_items), ("user", p.n_users)):
            cols = [c for c, o in spec.text.items() if tables.owner(c, o) == owner and c not in spec.labels]
            if not cols or not ids_len:
                continue
            texts = table_texts(tables, cols, owner, p.sep)
            vec, info = encode_texts(texts, text_encoder, lambda f: progress and progress("text", 0.7 + 0.25 * f))
            name = f"{owner}_text"
            (p.item_table if owner == "item" else p.user_table)[name] = vec
            p.fields.append(FeatureField(name, "dense", owner, f"{owner} text", dim=int(vec.shape[1])))
            text_report[name] = {"columns": cols, **info,
                                 "model": getattr(text_encoder, "model_name", type(text_encoder).__name__)}
    p.report["text"] = text_report


def table_texts(tables, cols: list[str], owner: str, sep: str) -> list[str]:
    """One text per user/item: its text columns joined as sentences ("Title. Description.");
    delimited lists such as genres are written as words ("Genres: Drama, Romance")."""
    import pandas as pd
    frame = pd.DataFrame({c: pd.Series(tables.table_values(c, owner)).reset_index(drop=True) for c in cols})
    try:   # the same text layout as mtlrec.serve.text (so its disk cache is shared)
        from mtlrec.serve.text import multilabel_columns, texts_from_frame
        ml = multilabel_columns(tables.spec, frame, cols)
        return texts_from_frame(frame, cols, multilabel=ml, sep=sep)
    except (ImportError, AttributeError):
        parts = [frame[c].astype(object).where(frame[c].notna(), "").astype(str).str.strip()
                 .str.replace(sep, ", ", regex=False).str.rstrip(". ") for c in cols]
        joined = parts[0]
        for p in parts[1:]:
            joined = joined.str.cat(p, sep=". ")
        return (joined.str.replace(r"^(\. )+|(\. )+$", "", regex=True)
                .str.replace(r"(\. ){2,}", ". ", regex=True) + ".").str.replace(r"^\.$", "", regex=True).tolist()


def encode_texts(texts: list[str], encoder, progress) -> tuple[np.ndarray, dict]:
    """Encode each distinct non-empty text once; empty texts get a zero vector."""
    import pandas as pd
    codes, uniq = pd.factorize(pd.Series(texts), sort=False)
    uniq = [str(u) for u in uniq]
    nonempty = [k for k, u in enumerate(uniq) if u.strip()]
    t0 = time.perf_counter()
    vecs = None
    if nonempty:
        batch = [uniq[k] for k in nonempty]
        try:
            takes_progress = "progress" in inspect.signature(encoder).parameters
        except (TypeError, ValueError):
            takes_progress = False
        if takes_progress and progress:
            out = encoder(batch, progress=lambda done, total: progress(done / max(total, 1)))
        else:
            out = encoder(batch)
        vecs = np.asarray(out, dtype=np.float32)
        if vecs.ndim != 2 or len(vecs) != len(batch):
            raise ValueError(f"the text encoder returned shape {vecs.shape} for {len(batch)} texts")
    if progress:
        progress(1.0)
    dim = int(vecs.shape[1]) if vecs is not None else int(getattr(encoder, "dim", 1))
    table = np.zeros((len(uniq), dim), np.float32)
    if vecs is not None:
        table[nonempty] = vecs
    return table[codes], {"dim": dim, "texts": len(texts), "unique_texts": len(nonempty),
                          "seconds": round(time.perf_counter() - t0, 3)}
