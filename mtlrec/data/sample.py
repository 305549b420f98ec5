"""Generated data: the shipped sample catalogue, Ma et al.'s synthetic tasks, and large
synthetic interaction tables for benchmarks.

``sample_catalogue(seed)`` builds a MovieLens-like data set (users, items, interactions)
from latent user interests over *genres* and over *themes*, plus a hidden item *quality*:

* genres are a structured column of the items table (``"Drama|Romance"``);
* themes ("heartwarming", "dark", "witty", ...) and quality cues ("a masterful ...",
  "a clumsy ...") appear **only** in the one-sentence description, so a language-model
  encoding of the description carries signal that no structured column has -- in
  particular for items never seen in training (cold start);
* the four labels are related but not identical: ``click`` is driven by genre affinity
  and popularity, ``like`` and ``rating`` by theme affinity and quality, ``watch_fraction``
  by both, each with its own noise.

Everything is deterministic for a given seed (numpy ``default_rng``) -- and identical on any
CPU: see "Reproducible arithmetic" below.
"""
from __future__ import annotations

import hashlib
import math
from pathlib import Path

import numpy as np

from mtlrec.diskio import write_bytes

GENRES = ["Action", "Adventure", "Animation", "Comedy", "Crime", "Documentary", "Drama",
          "Family", "Fantasy", "Horror", "Musical", "Mystery", "Romance", "Sci-Fi", "Thriller"]
# how often each genre appears (relative)
_GENRE_WEIGHT = np.array([9, 6, 3, 10, 5, 2, 12, 3, 4, 4, 2, 4, 7, 5, 6], dtype=float)

# themes live only in the description text; each has several wordings
THEMES = {
    "heartwarming": ["a heartwarming, tender story of kindness and hope",
                     "warm, gentle and uplifting, with a big heart",
                     "a touching, feel-good tale about love and family bonds"],
    "dark": ["a bleak, dark and disturbing look at violence and despair",
             "grim and pitch-black, soaked in death and cruelty",
             "a brutal, nihilistic descent into darkness and guilt"],
    "witty": ["sharp, witty and laugh-out-loud funny, full of clever banter",
              "a playful, hilarious comedy of jokes and sparkling one-liners",
              "clever, ironic and very funny, with razor-sharp dialogue"],
    "epic": ["an epic, sweeping saga of huge battles across vast kingdoms",
             "grand in scale, with spectacular armies, empires and heroic quests",
             "a monumental, larger-than-life adventure spanning generations of war"],
    "slow-burn": ["a slow-burn, quiet and contemplative character study",
                  "patient, meditative and understated, told in long silences",
                  "a calm, unhurried and reflective portrait of loneliness"],
    "suspense": ["tense, nail-biting suspense with a ticking clock",
                 "a gripping, edge-of-your-seat chase full of twists",
                 "relentless, heart-pounding tension from start to finish"],
    "whimsical": ["whimsical and dreamlike, full of magic, colour and fairy-tale wonder",
                  "a quirky, enchanting fable with talking animals and flying castles",
                  "charmingly surreal, playful and magical"],
    "gritty": ["gritty, raw and realistic, set in dirty streets and poverty",
               "a hard-edged, documentary-style portrait of crime and survival on the streets",
               "unflinching urban realism about drugs, gangs and corruption"],
}
THEME_NAMES = list(THEMES)
# the theme as one adjective ("..., dark in tone, ...")
THEME_ADJ = {"heartwarming": "heartwarming", "dark": "dark", "witty": "witty", "epic": "epic",
             "slow-burn": "slow-burn", "suspense": "suspenseful", "whimsical": "whimsical",
             "gritty": "gritty"}

# quality cues (5 bins, low -> high), also only in the description
QUALITY_CUES = [
    ["A clumsy, badly acted and boring", "A dull, poorly made and forgettable",
     "A tedious, amateurish and painfully bad"],
    ["A mediocre, uneven", "A flawed and rather predictable", "A weak, by-the-numbers"],
    ["A decent", "A competent, watchable", "An ordinary but pleasant"],
    ["A very good, well-acted", "A strong, well-crafted", "An engaging and beautifully shot"],
    ["A masterful, award-winning", "A brilliant, critically acclaimed", "A stunning, unforgettable"],
]

_SUBJECTS = ["a retired detective", "two estranged sisters", "a young pilot", "a small-town teacher",
             "a runaway princess", "an ageing boxer", "a lonely robot", "a family of farmers",
             "a rookie journalist", "a widowed fisherman", "three childhood friends", "a stubborn chef",
             "a disgraced surgeon", "a teenage hacker", "an exiled king", "a travelling circus",
             "a jazz pianist", "a stray dog", "a rebel captain", "a mountain guide",
             "a pair of con artists", "a nervous bride", "a village witch", "an undercover agent",
             "a grieving father", "a marine biologist", "a gang of thieves", "a shy librarian"]
_SETTINGS = ["in 1920s Paris", "on a remote island", "in a frozen northern town", "in near-future Tokyo",
             "on the Mississippi", "in a crumbling castle", "in the Sahara", "in post-war Berlin",
             "in a New York tenement", "aboard a starship", "in a seaside village", "in rural Ireland",
             "in Victorian London", "in the Amazon jungle", "on the Silk Road", "in a mining town",
             "in suburban Ohio", "under the sea", "in a mountain monastery", "in Rio during carnival"]
_TITLE_ADJ = ["Silent", "Golden", "Broken", "Last", "Crimson", "Hidden", "Wild", "Distant", "Burning",
              "Lost", "Midnight", "Electric", "Hollow", "Forgotten", "Bright", "Savage", "Gentle",
              "Endless", "Frozen", "Secret", "Little", "Iron", "Velvet", "Northern"]
_TITLE_NOUN = ["River", "Kingdom", "Summer", "Promise", "Shadows", "Harbor", "Garden", "Storm", "Empire",
               "Letters", "Highway", "Orchard", "Mirror", "Frontier", "Lanterns", "Tide", "Crown",
               "Horizon", "Echoes", "Station", "Waltz", "Engine", "Heart", "Valley", "Ghosts", "Circus"]
_TITLE_PLACE = ["Avalon", "Brooklyn", "Marseille", "the North", "Kyoto", "the Delta", "Babylon", "Eden",
                "Casablanca", "the Moon", "Alaska", "Venice", "Tangier", "the Andes", "Coney Island"]
OCCUPATIONS = ["student", "engineer", "teacher", "artist", "doctor", "writer", "sales", "lawyer",
               "programmer", "retired", "homemaker", "scientist", "technician", "executive"]


# ---- Reproducible arithmetic ------------------------------------------------------------------
# The shipped files must come out byte-identical on any CPU with the same pinned packages. numpy
# picks vectorised kernels by CPU features (transcendental ufuncs, and sorts: the default
# ``argsort`` of equal keys orders them differently with and without AVX2), OpenBLAS picks matmul
# kernels by CPU and thread count; their results differ in the last bits (or, for sorts, in the
# order of ties), and one flipped discrete choice cascades through the rest of the data.
# So the generators use only what IEEE 754 fixes bit for bit -- the RNG's draws, elementwise
# + - * / and sqrt, rint/floor/frexp/ldexp, comparisons and sequential cumsum -- plus:
#   * exp / log / sin built from those (range reduction + polynomial), accurate to ~1e-16;
#   * dot products as explicit fixed-order elementwise accumulations (never ``@``/einsum/BLAS);
#   * sums through ``math.fsum`` (correctly rounded, so order-free);
#   * stable sorts, so ties are ordered by index;
#   * values rounded to a grid (``quantise``, 1e-6) before each discrete decision, and floats
#     written with a fixed number of decimals.
_LN2_HI = 6.93147180369123816490e-01      # ln 2 split so that k * _LN2_HI is exact (fdlibm)
_LN2_LO = 1.90821492927058770002e-10
_INV_LN2 = 1.44269504088896338700e+00
_EXP_COEF = [1.0 / math.factorial(k) for k in range(14)]
_PIO2_HI = 1.57079632673412561417e+00     # pi/2 split likewise (fdlibm pio2_1, pio2_1t)
_PIO2_LO = 6.07710050650619224932e-11
_INV_PIO2 = 6.36619772367581382433e-01


def _horner(coef, x):
    """sum_k coef[k] * x**k, evaluated from the highest power (one ufunc per step: no fma)."""
    acc = np.full_like(x, coef[-1])
    for c in reversed(coef[:-1]):
        acc = acc * x + c
    return acc


def det_exp(x):
    """exp(x) from IEEE-exact operations only: the same bits on every CPU (rel. error ~2e-16).

    x is clipped to [-745, 709], so the result is always finite (and never exactly 0)."""
    x = np.clip(np.asarray(x, dtype=float), -745.0, 709.0)
    k = np.rint(x * _INV_LN2)
    r = (x - k * _LN2_HI) - k * _LN2_LO                 # |r| <= 0.35: Taylor to r^13 suffices
    return np.ldexp(_horner(_EXP_COEF, r), k.astype(np.int64))


def det_log(x):
    """Natural log of positive x from IEEE-exact operations only (rel. error ~2e-16)."""
    m, e = np.frexp(np.asarray(x, dtype=float))         # x = m * 2**e, m in [0.5, 1)
    low = m < 0.7071067811865476
    m = np.where(low, m * 2.0, m)                       # m in [sqrt(1/2), sqrt(2))
    e = (e - low).astype(float)
    f = m - 1.0
    s = f / (2.0 + f)                                   # log m = 2 atanh s, |s| < 0.172
    series = _horner([1.0 / (2 * k + 1) for k in range(13)], s * s)
    return e * _LN2_HI + (2.0 * s * series + e * _LN2_LO)


def det_sin(x):
    """sin(x) from IEEE-exact operations only, for |x| up to ~1e6 (abs. error ~1e-16)."""
    x = np.asarray(x, dtype=float)
    k = np.rint(x * _INV_PIO2)
    r = (x - k * _PIO2_HI) - k * _PIO2_LO               # |r| <= pi/4
    r2 = r * r
    sin_r = r * _horner([(-1.0) ** j / math.factorial(2 * j + 1) for j in range(10)], r2)
    cos_r = _horner([(-1.0) ** j / math.factorial(2 * j) for j in range(10)], r2)
    quadrant = np.mod(k, 4.0)
    out = np.where((quadrant == 0) | (quadrant == 2), sin_r, cos_r)
    return np.where(quadrant >= 2, -out, out)


def quantise(x, decimals: int = 6):
    """Round to a grid (1e-6 by default) far coarser than float noise, before a discrete decision.

    The generators' values are already bit-reproducible; this is the second line of defence: a
    last-bit difference can then only matter where a value lies within float noise of a grid
    midpoint, instead of wherever two values are within float noise of each other.
    """
    return np.round(np.asarray(x, dtype=float), decimals)


def _rowdot(a, b):
    """Row-wise dot product of two [n, k] arrays, summed in a fixed order over k."""
    acc = a[:, 0] * b[:, 0]
    for j in range(1, a.shape[1]):
        acc = acc + a[:, j] * b[:, j]
    return acc


def _outer_dot(a, b):
    """``a @ b.T`` for [n, k] and [m, k] arrays, summed in a fixed order over k (no BLAS)."""
    acc = a[:, 0, None] * b[None, :, 0]
    for j in range(1, a.shape[1]):
        acc = acc + a[:, j, None] * b[None, :, j]
    return acc


def _fsum(a) -> float:
    return math.fsum(np.asarray(a, dtype=float).ravel().tolist())


def _sigmoid(z):
    return 1.0 / (1.0 + det_exp(-np.asarray(z, dtype=float)))


def _zscore(a):
    a = np.asarray(a, dtype=float)
    mean = _fsum(a) / a.size
    d = a - mean
    std = math.sqrt(_fsum(d * d) / a.size)
    return d / (std + 1e-12)


def _titles(rng, n):
    patterns = rng.integers(0, 5, n)
    adj = rng.choice(_TITLE_ADJ, n)
    noun = rng.choice(_TITLE_NOUN, n)
    noun2 = rng.choice(_TITLE_NOUN, n)
    place = rng.choice(_TITLE_PLACE, n)
    out, seen = [], set()
    for i in range(n):
        p = patterns[i]
        if p == 0:
            t = f"The {adj[i]} {noun[i]}"
        elif p == 1:
            t = f"{noun[i]} of {place[i]}"
        elif p == 2:
            t = f"{adj[i]} {noun[i]}"
        elif p == 3:
            t = f"The {noun[i]} and the {noun2[i]}"
        else:
            t = f"{adj[i]} {noun[i]} over {place[i]}"
        base, k = t, 2
        while t in seen:          # sequels keep titles unique
            t = f"{base} {k}"
            k += 1
        seen.add(t)
        out.append(t)
    return out


def sample_catalogue(seed: int = 42, n_users: int = 1000, n_items: int = 800,
                     n_interactions: int = 60_000, return_latent: bool = False):
    """The sample data set: ``(interactions, users, items)`` DataFrames, deterministic per seed.

    interactions: user_id, item_id, timestamp (unix seconds), click (0/1), like (0/1),
    rating (1-5), watch_fraction (0-1). users: user_id, age, gender, occupation.
    items: item_id, title, genres ("A|B"), description, year.
    With ``return_latent=True`` a fourth element holds the hidden variables (item quality,
    item themes, user genre/theme preferences, popularity) for checks and teaching.

    The steps draw from one generator in a fixed order (items, users, exposures, labels, times):
    reordering them changes every value.
    """
    import pandas as pd

    rng = np.random.default_rng(seed)
    items, it = _sample_items(rng, n_items)
    users, genre_pref, theme_pref = _sample_users(rng, n_users)
    counts = _user_counts(rng, n_users, n_items, n_interactions)
    u_idx, i_idx, g_aff_all = _exposures(rng, counts, genre_pref, it["genre_mat"], it["log_pop"])
    labels = _labels(rng, u_idx, i_idx, g_aff_all, theme_pref, it)
    ts = _timestamps(rng, n_users, u_idx)

    inter = pd.DataFrame({"user_id": u_idx + 1, "item_id": i_idx + 1, "timestamp": ts, **labels})
    inter = inter.sort_values(["user_id", "timestamp"], kind="stable").reset_index(drop=True)
    if return_latent:
        latent = {"quality": it["quality"], "theme_mat": it["theme_mat"], "main_theme": it["main_theme"],
                  "genre_pref": genre_pref, "theme_pref": theme_pref, "log_pop": it["log_pop"]}
        return inter, users, items, latent
    return inter, users, items


def _sample_items(rng, n_items: int):
    """(the items table, its hidden variables: genre and theme matrices, main theme, quality, popularity)."""
    import pandas as pd

    G, T = len(GENRES), len(THEME_NAMES)
    n_gen = rng.choice([1, 2, 3], size=n_items, p=[0.3, 0.45, 0.25])
    gp = _GENRE_WEIGHT / _GENRE_WEIGHT.sum()
    genre_mat = np.zeros((n_items, G))
    item_genres = []
    for i in range(n_items):
        g = np.sort(rng.choice(G, size=n_gen[i], replace=False, p=gp))
        genre_mat[i, g] = 1.0
        item_genres.append(g)
    # one main theme per item (sometimes a second one), independent of the genres
    main_theme = rng.integers(0, T, n_items)
    second = np.where(rng.random(n_items) < 0.35, rng.integers(0, T, n_items), -1)
    theme_mat = np.zeros((n_items, T))
    theme_mat[np.arange(n_items), main_theme] = 1.0
    has2 = (second >= 0) & (second != main_theme)
    theme_mat[np.where(has2)[0], second[has2]] = 0.6
    quality = rng.normal(0, 1, n_items)
    q_bin = np.digitize(quality, np.quantile(quality, [0.2, 0.4, 0.6, 0.8]))
    log_pop = rng.normal(0, 1, n_items) + 0.5 * quality
    year = np.clip(np.round(2024 - rng.gamma(2.0, 9.0, n_items)), 1950, 2024).astype(int)

    titles = _titles(rng, n_items)
    descriptions = _descriptions(rng, item_genres, q_bin, main_theme, second, has2)
    items = pd.DataFrame({
        "item_id": np.arange(1, n_items + 1),
        "title": titles,
        "genres": ["|".join(GENRES[g] for g in gs) for gs in item_genres],
        "description": descriptions,
        "year": year,
    })
    return items, {"genre_mat": genre_mat, "theme_mat": theme_mat, "main_theme": main_theme,
                   "quality": quality, "log_pop": log_pop}


def _descriptions(rng, item_genres, q_bin, main_theme, second, has2) -> list[str]:
    """One sentence per item that names its genres and themes and hints at its quality."""
    n_items = len(item_genres)
    subj = rng.choice(_SUBJECTS, n_items)
    sett = rng.choice(_SETTINGS, n_items)
    cue_k = rng.integers(0, 3, n_items)
    th_k = rng.integers(0, 3, n_items)
    descriptions = []
    for i in range(n_items):
        gnames = [GENRES[g].lower() for g in item_genres[i]]
        gtxt = gnames[0] if len(gnames) == 1 else ", ".join(gnames[:-1]) + " and " + gnames[-1]
        cue = QUALITY_CUES[q_bin[i]][cue_k[i]]
        theme_txt = THEMES[THEME_NAMES[main_theme[i]]][th_k[i]]
        extra = ""
        if has2[i]:
            extra = f", and {THEME_NAMES[second[i]]} at times"
        tone = THEME_ADJ[THEME_NAMES[main_theme[i]]]
        descriptions.append(f"{cue} {gtxt} film, {tone} in tone, about {subj[i]} {sett[i]}: "
                            f"{theme_txt}{extra}.")
    return descriptions


def _sample_users(rng, n_users: int):
    """(the users table, genre preferences [U, G], theme preferences [U, T]): personal taste shifted by
    age, gender and occupation, so that the user features carry signal."""
    import pandas as pd

    G, T = len(GENRES), len(THEME_NAMES)
    age = np.clip(np.round(rng.gamma(6.0, 5.5, n_users) + 12), 16, 80).astype(int)
    gender = rng.choice(["F", "M", "X"], size=n_users, p=[0.48, 0.48, 0.04])
    occupation = rng.choice(OCCUPATIONS, size=n_users)
    age_z = (age - 40) / 15.0
    # genre interests: personal taste + demographic shifts (so user features carry signal)
    genre_pref = rng.normal(0, 1.0, (n_users, G))
    gi = {g: k for k, g in enumerate(GENRES)}
    genre_pref[:, gi["Animation"]] -= 0.8 * age_z
    genre_pref[:, gi["Family"]] += 0.4 * age_z
    genre_pref[:, gi["Action"]] -= 0.5 * age_z
    genre_pref[:, gi["Documentary"]] += 0.6 * age_z
    genre_pref[:, gi["Drama"]] += 0.5 * age_z
    genre_pref[:, gi["Romance"]] += np.where(gender == "F", 0.6, -0.3)
    genre_pref[:, gi["Action"]] += np.where(gender == "M", 0.6, -0.3)
    genre_pref[:, gi["Horror"]] -= 0.5 * age_z
    # theme interests: personal taste + occupation/age shifts
    theme_pref = rng.normal(0, 1.0, (n_users, T))
    occ_shift = rng.normal(0, 0.7, (len(OCCUPATIONS), T))
    occ_idx = np.searchsorted(np.array(sorted(OCCUPATIONS)), occupation)
    theme_pref += occ_shift[occ_idx]
    ti = {t: k for k, t in enumerate(THEME_NAMES)}
    theme_pref[:, ti["slow-burn"]] += 0.6 * age_z
    theme_pref[:, ti["whimsical"]] -= 0.5 * age_z
    theme_pref[:, ti["suspense"]] -= 0.3 * age_z
    users = pd.DataFrame({"user_id": np.arange(1, n_users + 1), "age": age,
                          "gender": gender, "occupation": occupation})
    return users, genre_pref, theme_pref


def _user_counts(rng, n_users: int, n_items: int, n_interactions: int) -> np.ndarray:
    """Interactions per user: log-normal activity, 15 to n_items // 2 each, ``n_interactions`` in all."""
    activity = det_exp(rng.normal(0, 0.7, n_users))     # = rng.lognormal(0, 0.7): same draws
    share = quantise(activity / _fsum(activity) * n_interactions)
    counts = np.maximum(15, np.round(share)).astype(int)
    counts = np.minimum(counts, n_items // 2)
    # fix total to n_interactions exactly (adjust the most active users; ties in user order --
    # a stable sort, since the default one orders equal counts differently on different CPUs)
    diff = n_interactions - counts.sum()
    order = np.argsort(-counts, kind="stable")
    j = 0
    while diff != 0:
        u = order[j % n_users]
        step = 1 if diff > 0 else -1
        if 15 <= counts[u] + step <= n_items // 2:
            counts[u] += step
            diff -= step
        j += 1
    return counts


def _exposures(rng, counts, genre_pref, genre_mat, log_pop):
    """Which user sees which item: each user's ``counts`` items, drawn without replacement by genre
    affinity and popularity (Gumbel top-k) -> (user index, item index, genre affinity [U, I])."""
    n_users, n_items = genre_pref.shape[0], genre_mat.shape[0]
    g_aff_all = _outer_dot(genre_pref, genre_mat / np.sqrt(genre_mat.sum(1, keepdims=True)))  # [U, I]
    logits = 0.6 * g_aff_all + 0.8 * log_pop[None, :]
    u01 = np.maximum(rng.random((n_users, n_items)), 2.0 ** -60)     # log(0) never happens
    gumbel = -det_log(-det_log(u01))
    ranked = np.argsort(-quantise(logits + gumbel), axis=1, kind="stable")
    u_idx = np.repeat(np.arange(n_users), counts)
    pos = np.concatenate([np.arange(c) for c in counts])
    i_idx = ranked[u_idx, pos]
    return u_idx, i_idx, g_aff_all


def _labels(rng, u_idx, i_idx, g_aff_all, theme_pref, it: dict) -> dict[str, np.ndarray]:
    """click, like, rating and watch_fraction of each exposure, from genre and theme affinity, item
    quality and popularity (each task weighs them differently)."""
    g_aff = _zscore(g_aff_all[u_idx, i_idx])
    t_aff = _zscore(_rowdot(theme_pref[u_idx], it["theme_mat"][i_idx]))
    q = it["quality"][i_idx]
    pop = _zscore(it["log_pop"])[i_idx]
    n = len(u_idx)
    click_p = _sigmoid(-0.4 + 1.0 * g_aff + 0.5 * pop + 0.6 * q + 0.5 * t_aff + rng.normal(0, 0.5, n))
    click = (rng.random(n) < quantise(click_p)).astype(int)
    taste = 1.2 * t_aff + 1.1 * q + 0.3 * g_aff
    like_p = _sigmoid(-0.5 + taste + rng.normal(0, 0.5, n))
    like = (rng.random(n) < quantise(like_p)).astype(int)
    r_lat = 3.1 + 0.75 * (0.9 * t_aff + 0.9 * q + 0.35 * g_aff) + rng.normal(0, 0.7, n)
    rating = np.clip(np.round(quantise(r_lat)), 1, 5).astype(int)
    wf = _sigmoid(0.2 + 0.7 * g_aff + 0.6 * t_aff + 0.5 * q + rng.normal(0, 0.8, n))
    watch_fraction = np.round(np.clip(quantise(wf), 0, 1), 3)
    return {"click": click, "like": like, "rating": rating, "watch_fraction": watch_fraction}


def _timestamps(rng, n_users: int, u_idx) -> np.ndarray:
    """Each user is active over a window in 2019-2024, the events spread inside it."""
    n = len(u_idx)
    t0 = 1546300800  # 2019-01-01
    span = 5 * 365 * 86400
    start = t0 + rng.integers(0, span // 2, n_users)
    length = rng.integers(30 * 86400, span // 2, n_users)
    return start[u_idx] + (rng.random(n) * length[u_idx]).astype(np.int64)

SAMPLE_FILES = ("interactions.csv", "users.csv", "items.csv")


def csv_text(df) -> str:
    """The CSV text the sample files hold: no index, "\\n" line ends, floats with 3 decimals."""
    return df.to_csv(index=False, lineterminator="\n", float_format="%.3f")


def write_sample(out_dir, seed: int = 42) -> dict[str, Path]:
    """Write the sample data set as three CSV files into ``out_dir``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    inter, users, items = sample_catalogue(seed)
    paths = {}
    for name, df in zip(SAMPLE_FILES, (inter, users, items)):
        p = out / name
        write_bytes(p, csv_text(df).encode())
        paths[name] = p
    return paths


def frames_digest(*frames) -> str:
    """A stable hash of DataFrames' CSV text (used to check shipped files against the generator)."""
    h = hashlib.sha256()
    for df in frames:
        h.update(csv_text(df).encode())
    return h.hexdigest()


# ---- Ma et al. (KDD 2018), section 3.2 --------------------------------------------------------
def synthetic_tasks(n: int = 10_000, dim: int = 16, p: float = 0.5, c: float = 1.0, m: int = 10,
                    seed: int = 0, noise: float = 0.01):
    """Two regression tasks with controllable correlation ``p`` (Ma et al., KDD 2018, §3.2).

    u1, u2 orthonormal in R^dim; w1 = c*u1, w2 = c*(p*u1 + sqrt(1-p^2)*u2);
    x ~ N(0, I); y_k = w_k^T x + sum_{i=1..m} sin(alpha_i * w_k^T x + beta_i) + eps,
    with alpha_i, beta_i ~ N(0, 1) shared by both tasks and eps ~ N(0, noise^2).
    Returns a DataFrame with columns x0..x{dim-1}, y1, y2 (the Pearson correlation of the
    two labels grows with p).
    """
    import pandas as pd

    if not -1.0 <= p <= 1.0:
        raise ValueError("p must be in [-1, 1]")
    rng = np.random.default_rng(seed)
    # u1, u2: Gram-Schmidt on two Gaussian vectors (fixed-order sums: the same bits on any CPU)
    a = rng.normal(size=(dim, 2))
    u1 = a[:, 0] / math.sqrt(_fsum(a[:, 0] * a[:, 0]))
    v = a[:, 1] - _fsum(u1 * a[:, 1]) * u1
    u2 = v / math.sqrt(_fsum(v * v))
    w1 = c * u1
    w2 = c * (p * u1 + math.sqrt(max(0.0, 1 - p * p)) * u2)
    alpha = rng.normal(size=m)
    beta = rng.normal(size=m)
    x = rng.normal(size=(n, dim))
    out = {f"x{j}": x[:, j] for j in range(dim)}
    for k, w in ((1, w1), (2, w2)):
        s = _rowdot(x, np.broadcast_to(w, x.shape))
        waves = det_sin(s[:, None] * alpha[None, :] + beta[None, :])
        total = s
        for i in range(m):
            total = total + waves[:, i]
        out[f"y{k}"] = total + rng.normal(0, noise, n)
    return pd.DataFrame(out)


# ---- large synthetic interactions (benchmarks) ---------------------------------------------
def synthetic_interactions(n_interactions: int = 1_000_000, n_users: int = 50_000,
                           n_items: int = 20_000, seed: int = 0):
    """Large random interaction data with users and items tables, built vectorised.

    Returns ``(interactions, users, items)``: interactions have user_id, item_id, timestamp,
    click, rating, device (context); users: user_id, age, gender, country; items: item_id,
    title, genres, price. Signals are weak but real (click/rating depend on a latent match).
    """
    import pandas as pd

    rng = np.random.default_rng(seed)
    G = len(GENRES)
    u_f = rng.normal(size=(n_users, 4))
    i_f = rng.normal(size=(n_items, 4))
    u = rng.integers(0, n_users, n_interactions)
    it = np.minimum((rng.pareto(1.2, n_interactions) * n_items / 20).astype(np.int64), n_items - 1)
    it = rng.permutation(n_items)[it]
    match = _rowdot(u_f[u], i_f[it]) / 2
    click = (rng.random(n_interactions) < _sigmoid(match - 0.3)).astype(np.int8)
    rating = np.clip(np.round(3 + match + rng.normal(0, 0.8, n_interactions)), 1, 5).astype(np.int8)
    ts = 1546300800 + rng.integers(0, 4 * 365 * 86400, n_interactions)
    devices = np.array(["mobile", "desktop", "tv", "tablet"])
    inter = pd.DataFrame({"user_id": u + 1, "item_id": it + 1, "timestamp": ts, "click": click,
                          "rating": rating, "device": devices[rng.integers(0, 4, n_interactions)]})
    countries = np.array(["US", "DE", "FR", "IN", "BR", "JP", "GB", "ES", "IT", "CA"])
    users = pd.DataFrame({"user_id": np.arange(1, n_users + 1),
                          "age": rng.integers(16, 80, n_users),
                          "gender": rng.choice(["F", "M", "X"], n_users, p=[0.48, 0.48, 0.04]),
                          "country": countries[rng.integers(0, len(countries), n_users)]})
    a = rng.integers(0, len(_TITLE_ADJ), n_items)
    b = rng.integers(0, len(_TITLE_NOUN), n_items)
    titles = (pd.Series(np.array(_TITLE_ADJ)[a]) + " " + pd.Series(np.array(_TITLE_NOUN)[b]) + " "
              + pd.Series(np.arange(1, n_items + 1)).astype(str))
    g1 = rng.integers(0, G, n_items)
    g2 = rng.integers(0, G, n_items)
    gn = np.array(GENRES)
    genres = np.where(g1 == g2, gn[g1], pd.Series(gn[g1]) + "|" + pd.Series(gn[g2]))
    items = pd.DataFrame({"item_id": np.arange(1, n_items + 1), "title": titles.to_numpy(),
                          "genres": genres, "price": np.round(rng.gamma(2.0, 5.0, n_items), 2)})
    return inter, users, items
