"""The app's pages in one place: file, title, icon and what the visitor does there.

app.py builds its navigation from `PAGES`, and Home lists them, so the two never disagree."""
from __future__ import annotations

PAGES = [   # (file, title, icon, what you do there -- None: not listed on Home)
    ("pages/home.py", "Home", ":material/home:", None),
    ("pages/data.py", "Data", ":material/table_chart:",
     "upload interactions (plus optional users and items tables) or use the sample; check column roles; "
     "read the validation report and statistics; prepare the dataset"),
    ("pages/model.py", "Tasks & model", ":material/account_tree:",
     "add and weight tasks, choose the architecture and its hyperparameters, switch on language-model "
     "text features"),
    ("pages/train.py", "Train", ":material/model_training:",
     "start training in the background, watch live per-task curves, optionally train single-task baselines"),
    ("pages/results.py", "Results", ":material/insights:",
     "per-task test metrics, curves of several runs, MTL gain, ROC/PR curves, rating residuals"),
    ("pages/recommend.py", "Recommendations", ":material/recommend:",
     "top-K lists per user with per-task and fused scores; re-weight the tasks and download"),
    ("pages/explain.py", "Explain", ":material/psychology:",
     "why one user got one item: per-task SHAP contributions"),
    ("pages/runs.py", "Runs", ":material/folder_open:",
     "every run folder of this server: open one as the current run, rename, tag or delete it, download "
     "its report, metrics or folder, import a run zip, compare runs side by side"),
    ("pages/lab.py", "Lab", ":material/science:",
     "Ma et al.'s synthetic experiment: how task correlation decides between shared-bottom, MMoE and PLE, "
     "and what the loss-weighting methods do, in seconds on the CPU"),
]


def pages_table() -> str:
    """The pages a visitor works in (every page but Home), as a markdown table."""
    rows = [f"| **{title}** | {what} |" for _file, title, _icon, what in PAGES if what]
    return "\n".join(["| Page | What you do there |", "|---|---|", *rows])
