"""An explanation in one plain sentence, naming only *material* reasons.

The materiality rule
--------------------
The sentence reads one view: the fused score's split into feature groups (else the first
task's). A group is *material* when the size of its contribution is at least
``MATERIAL_SHARE`` (a quarter) of the largest contribution's size in that view. Every reason
the sentence names is material, except the headline reason (the strongest one on the side the
score moved), which is always named. So "... and this user's gender is F (+0.00025)" next to a
first reason of +0.05 is never said.

A sensitive-looking group (`mtlrec.explain.values.SENSITIVE_PATTERNS`: gender, age, location,
...) follows the same rule: it is named only when material. When it is not (and no task relies
on it most), the sentence says so: "gender (a sensitive-looking feature) plays no material part",
or, when it is material for some task's own output, "... is material only for the like-task".
"""
from __future__ import annotations

from mtlrec.explain.values import reason, sensitive_kind

MATERIAL_SHARE = 0.25


def join(words: list[str]) -> str:
    """'a', 'a and b', 'a, b and c'."""
    words = [w for w in words if w]
    if len(words) <= 1:
        return "".join(words)
    return ", ".join(words[:-1]) + " and " + words[-1]


def signed(v: float) -> str:
    """A contribution as the sentence shows it: +0.31, +0.042, +0.0013."""
    if abs(v) >= 0.095:
        return f"{v:+.2f}"
    return f"{v:+.3f}" if abs(v) >= 0.0095 else f"{v:+.2g}"


def material(contributions: dict) -> set:
    """The groups whose |contribution| is at least ``MATERIAL_SHARE`` of the largest one (none when all are 0)."""
    ref = max((abs(float(v)) for v in contributions.values()), default=0.0)
    if ref <= 0:
        return set()
    return {g for g, v in contributions.items() if abs(float(v)) >= MATERIAL_SHARE * ref}


def _named(items: list, keep: set, top: int, headline: bool) -> list:
    """Of ``items`` (strongest first), the material ones, at most ``top``; with ``headline`` the
    first always."""
    out = [gv for k, gv in enumerate(items) if (headline and k == 0) or gv[0] in keep]
    return out[:top]


def _view(result: dict) -> dict:
    fused = result.get("fused")
    if fused:
        return {"contributions": fused["contributions"], "total": fused["score"] - fused["base_value"]}
    first = next(iter(result["tasks"].values()))
    return {"contributions": first["contributions"], "total": first["output"] - first["base_value"]}


def _head(contrib: dict, total: float, features: dict, top: int) -> tuple[str, set]:
    """The reasons part and the groups it names."""
    keep = material(contrib)

    def said(pairs) -> str:
        return join([f"{reason(g, features.get(g))} ({signed(v)})" for g, v in pairs])

    pos = sorted(((g, v) for g, v in contrib.items() if v > 0), key=lambda gv: (-gv[1], gv[0]))
    neg = sorted(((g, v) for g, v in contrib.items() if v < 0), key=lambda gv: (gv[1], gv[0]))
    if total >= 0 and pos:
        main, other = _named(pos, keep, top, True), _named(neg, keep, 1, False)
        head = f"Recommended mainly because {said(main)}" + (f", held back by {said(other)}" if other else "")
    elif neg:
        main, other = _named(neg, keep, top, True), _named(pos, keep, 1, False)
        head = f"Scores below an average user-item pair, mostly because {said(main)}" \
            + (f"; {said(other)} speaks for it" if other else "")
    else:
        return "Scores like an average user-item pair", set()
    return head, {g for g, _ in main + other}


def _task_reliance(tasks: dict) -> tuple[str, set]:
    """'the click- and like-tasks rely most on item id, the rating-task on user id' and the groups named."""
    by_group: dict[str, list[str]] = {}
    for name, r in tasks.items():
        c = r["contributions"]
        if c and any(v != 0 for v in c.values()):
            by_group.setdefault(max(c, key=lambda g: abs(c[g])), []).append(name)
    parts = []
    for i, (g, names) in enumerate(by_group.items()):
        who = join([f"{n}-" for n in names[:-1]] + [f"{names[-1]}-task" + ("s" if len(names) > 1 else "")])
        verb = ("rely" if len(names) > 1 else "relies") + " most on " if i == 0 else "on "
        parts.append(f"the {who} {verb}{g}")
    return ", ".join(parts), set(by_group)


def _sensitive(group: str, features: dict) -> str | None:
    info = features.get(group)
    return info.get("sensitive") if info else sensitive_kind(group)


def _sensitive_clause(contrib: dict, tasks: dict, features: dict, named: set) -> str:
    """What the sentence says of sensitive-looking groups it did not name: one material in its view is
    named here (it was beyond the strongest ``top``); one material only for some tasks says for which;
    the others play no material part (in the view nor in any task)."""
    keep = material(contrib)
    per_task = {t: material(r["contributions"]) for t, r in tasks.items()}
    unnamed = [g for g in sorted(contrib) if g not in named and _sensitive(g, features)]
    loud = sorted((g for g in unnamed if g in keep), key=lambda g: -abs(contrib[g]))
    parts = []
    if loud:
        parts.append(f"{join([f'{reason(g, features.get(g))} ({signed(contrib[g])})' for g in loud])} "
                     f"also {'count' if len(loud) > 1 else 'counts'}")
    quiet = []
    for g in (g for g in unnamed if g not in keep):
        where = [t for t in tasks if g in per_task[t]]
        if where:
            who = join([f"{t}-" for t in where[:-1]] + [f"{where[-1]}-task" + ("s" if len(where) > 1 else "")])
            parts.append(f"{g.replace('_', ' ')} (a sensitive-looking feature) is material only for the {who}")
        else:
            quiet.append(g)
    if quiet:
        one = len(quiet) == 1
        parts.append(f"{join([g.replace('_', ' ') for g in quiet])} "
                     f"({'a sensitive-looking feature' if one else 'sensitive-looking features'}) "
                     f"{'plays' if one else 'play'} no material part")
    return "; ".join(parts)


def sentence(result: dict, top: int = 3) -> str:
    """One plain sentence: the strongest material reasons in words, with the pair's values and
    their contributions (fused score units, else the first task's), what it says of sensitive-looking
    features, then what each task relies on. Deterministic (ties broken by group name).

    E.g. "Recommended mainly because this user's occupation is student (+0.31) and the item's
    learned profile (120 training interactions; similar to Movie 3 and Movie 8) (+0.22), held back
    by this user's age is 61 (-0.09); gender (a sensitive-looking feature) plays no material part;
    the click- and like-tasks rely most on item id, the rating-task on user id." """
    features = result.get("features") or {}
    view = _view(result)
    head, named = _head(view["contributions"], view["total"], features, top)
    tasks, relied = _task_reliance(result["tasks"])
    clause = _sensitive_clause(view["contributions"], result["tasks"], features, named | relied)
    return head + "".join(f"; {p}" for p in (clause, tasks) if p) + "."
