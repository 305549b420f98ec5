"""Reading interaction data: generic CSV/TSV/Parquet files and known public formats.

Everything goes through one path: a list of ``(file name, bytes)``. ``load_data`` reads
files or folders from disk into that list, ``load_uploaded`` takes the app's uploads
(zip archives are opened in memory). Each file is then identified - by its content first, so
that renamed files work too, then by its name, then (a generic table among several files) by its
id columns - and read:

* MovieLens 100K: ``u.data`` (interactions: 4 tab-separated numbers), ``u.item`` (items: 24
  '|'-separated Latin-1 fields; the 19 genre flags become one pipe-joined ``genres`` column),
  ``u.user`` (users: 5 '|'-separated fields). ``u.genre``, ``u.occupation`` and ``u.info`` are
  skipped with a note. The ready-made splits ``uN.base`` / ``uN.test`` (N = 1..5, a, b): one pair
  without ``u.data`` (the two files, or a folder or zip holding only that pair) is read as a
  *predefined split* (base = train, test = test; see below); beside ``u.data`` they are skipped.
* MovieLens 1M / 10M: ``ratings.dat``, ``movies.dat``, ``users.dat`` ('::'-separated; the
  10M ``tags.dat`` is skipped with a note).
* MovieLens latest / 25M: ``ratings.csv`` (interactions), ``movies.csv`` (items),
  ``tags.csv``: kept whole as ``raw.extra["tags"]`` *and* turned into a per-(user, item)
  0/1 column ``tagged`` on the ratings (1 when that user tagged that movie).
* RecBole atomic files: ``*.inter`` / ``*.user`` / ``*.item`` with ``name:type`` headers.
  ``token_seq`` columns (space separated) are re-joined with ``|`` so that they read as
  multi-label text like MovieLens genres; the original types are in ``raw.meta["recbole_types"]``.
* Census-Income KDD: ``census-income*.gz|.data|.test`` plus ``columns.txt`` (see ``formats/census.py``).
* Generic files, named ``interactions*``/``ratings*``/``events*`` (interactions),
  ``users*``/``user*`` (users), ``items*``/``item*``/``movies*``/``products*`` (items); under
  any other name a table with a user id and an item id column is the interactions, one with
  only a user id (item id) column the users (items). A single generic file is the interactions.

Predefined splits (one file per split, or a MovieLens 100K ``uN.base`` / ``uN.test`` pair) are read by
:mod:`mtlrec.data.splits`. ``raw.meta["layouts"]`` says how each table was recognised and
``raw.meta["ignored"]`` which files were skipped and why; :func:`reading_notes` turns both into lines for
the app.

The modules, from the bottom up: :mod:`~mtlrec.data.raw` (RawData), :mod:`~mtlrec.data.limits` (sizes
allowed and taken), :mod:`~mtlrec.data.mapped` (large local files as memory maps),
:mod:`~mtlrec.data.files` (disk, folders, archives, decoding; ``UPLOAD_EXTENSIONS``),
:mod:`~mtlrec.data.tables` (generic CSV/TSV/Parquet), :mod:`~mtlrec.data.formats` (one module per known
format), :mod:`~mtlrec.data.identify` (which file is which table), :mod:`~mtlrec.data.splits`, and this
module, the entry points.

Every problem becomes a :class:`mtlrec.errors.DataError` naming the file.
"""
from __future__ import annotations

from pathlib import Path

from mtlrec.data.files import (excel_error, folder_files, is_excel, ml100k_split_part, read_path, tables_only,
                               take_file, unzip)
from mtlrec.data.formats.census import census_spec, read_census_files
from mtlrec.data.identify import read_identified
from mtlrec.data.limits import MAX_FILES, Limits, reading
from mtlrec.data.raw import RawData
from mtlrec.data.roles import DataSpec
from mtlrec.data.splits import read_ml100k_split
from mtlrec.errors import DataError


def load_data(paths, *, sep: str | None = None, limits: Limits | None = None) -> RawData:
    """Read one file, several files, a folder (of a known format) or a zip into :class:`RawData`.

    ``sep`` forces the delimiter of generic text files (otherwise it is detected). ``limits``:
    the sizes allowed (default :meth:`Limits.local`, larger than the app's uploads).
    """
    if isinstance(paths, (str, Path)):
        paths = [paths]
    with reading(limits or Limits.local()):
        files: list[tuple[str, bytes]] = []
        for p in paths:
            p = Path(p)
            if not p.exists():
                raise DataError("no such file or folder", file=str(p),
                                fix="check the path (a file, several files, or a folder of data files)")
            if p.is_dir():
                found = folder_files(p)
                if not found:
                    raise DataError("the folder holds no data files (.csv, .tsv, .parquet, .inter, u.data, ...)",
                                    file=str(p), fix="point to the folder that holds the data files")
                files.extend(found)
            elif p.suffix.lower() == ".zip":
                files.extend(unzip(p.name, read_path(p, p.name, charge=False)))
            else:
                files.append(read_path(p, p.name))
        return load_files(files, sep=sep)


def load_uploaded(files: list[tuple[str, bytes]], *, sep: str | None = None,
                  limits: Limits | None = None) -> RawData:
    """Same as :func:`load_data` for uploaded ``(name, bytes)`` files; ``.zip`` archives are
    opened in memory, their members inflated in chunks up to the limits. ``limits``: default
    :meth:`Limits.uploads` (smaller than for local files)."""
    with reading(limits or Limits.uploads()) as budget:
        flat: list[tuple[str, bytes]] = []
        for name, data in files:
            name = Path(str(name)).name
            low = name.lower()
            if is_excel(name, data):
                raise excel_error(name)
            if low.endswith(".zip") or data[:4] == b"PK\x03\x04" and not low.endswith((".parquet", ".pq")):
                flat.extend(unzip(name, data))
            else:
                take_file(budget, name, data)
                flat.append((name, data))
        if not flat:
            raise DataError("no files were uploaded", fix="upload an interactions file (CSV, TSV or Parquet)")
        return load_files(flat, sep=sep)


def load_files(files: list[tuple[str, bytes]], *, sep: str | None = None, limits: Limits | None = None) -> RawData:
    """Sort ``(name, bytes)`` files into tables and read them.

    Each file is identified by its content first (the headerless MovieLens layouts, RecBole
    headers), then by its name, then, for a generic table among several files, by its columns.
    ``raw.meta["layouts"]`` says how each table was recognised and ``raw.meta["ignored"]`` which
    files were skipped and why (see :func:`reading_notes`). ``limits``: inside :func:`load_data` /
    :func:`load_uploaded` theirs, else :meth:`Limits.local`.
    """
    with reading(limits):
        return _load_files(files, sep=sep)


def _load_files(files: list[tuple[str, bytes]], *, sep: str | None) -> RawData:
    split_parts: dict[str, dict[str, tuple[str, bytes]]] = {}     # "1" -> {"base": file, "test": file}
    for n, b in files:
        part = ml100k_split_part(n)
        if part:
            split_parts.setdefault(part[0], {})[part[1]] = (n, b)
    with_udata = any(Path(str(n)).name.lower() == "u.data" for n, _ in files)
    if split_parts and not with_udata:
        return read_ml100k_split(split_parts, [(n, b) for n, b in files if not ml100k_split_part(n)], sep=sep)
    files, ignored = tables_only(files)
    if not files:
        skipped = " (" + "; ".join(f"{k}: {v}" for k, v in ignored.items()) + ")" if ignored else ""
        raise DataError("no data table among the files" + skipped,
                        file=", ".join(ignored) or None,
                        fix="give an interactions file (CSV, TSV, Parquet, MovieLens u.data / ratings.dat, "
                            "RecBole .inter), or a zip of the dataset folder")
    if len(files) > MAX_FILES:
        raise DataError(f"{len(files)} files is too many (at most {MAX_FILES})",
                        fix="give the interactions file and at most a users and an items file")
    names = {Path(n).name.lower(): (n, b) for n, b in files}
    if "columns.txt" in names and any(n.startswith("census-income") for n in names):
        raw = read_census_files(names)
    else:
        census = [n for n in names if n.startswith("census-income")]
        if census and "columns.txt" not in names:
            raise DataError("the Census-Income file has no header; its column names come from columns.txt",
                            file=names[census[0]][0], fix="give the folder that holds both files, or add columns.txt")
        raw = read_identified(files, sep=sep)
    for table, df in raw.tables().items():
        if len(df) == 0:        # the same words as validate(): the app and the command line agree
            raise DataError("the file has a header but no data rows", file=raw.source(table),
                            fix="export the table again with its data rows")
    ignored.update(raw.meta.pop("ignored", {}))
    if ignored:
        raw.meta["ignored"] = ignored
    return raw


def reading_notes(raw: RawData) -> list[str]:
    """One line per file: which table it became and how it was recognised, then the skipped files."""
    layouts = raw.meta.get("layouts", {})
    lines = []
    for table, name in raw.sources.items():
        how = layouts.get(table)
        lines.append(f"{name} → {table}" + (f" ({how})" if how else ""))
    parts = raw.meta.get("split_files")
    if parts:
        lines.append("a predefined split: " + ", ".join(f"{p['file']} = {p['split']}" for p in parts)
                     + ("" if any(p["split"] == "valid" for p in parts) else " (valid is carved from train)")
                     + f"; column '{raw.meta.get('split_column')}' says which")
    for name, why in raw.meta.get("ignored", {}).items():
        lines.append(f"{name} ignored: {why}")
    return lines


def load_census(folder) -> tuple[RawData, DataSpec]:
    """Read the Census-Income KDD folder (data file + columns.txt) -> (RawData, DataSpec)."""
    folder = Path(folder)
    raw = load_data(folder)
    if raw.format != "census":
        raise DataError("not a Census-Income folder (expected census-income*.gz and columns.txt)", file=str(folder),
                        fix="point to the census-income-kdd folder")
    return raw, census_spec(raw)
