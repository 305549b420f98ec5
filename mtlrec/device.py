"""Choosing the torch device: ``pick_device("auto")`` prefers cuda > mps > cpu.

Never hard-code ``cuda:0``: a CUDA device is taken as ``torch.device("cuda")`` (the
current device), so ``CUDA_VISIBLE_DEVICES`` and ``torch.cuda.set_device`` are honoured.
"""
from __future__ import annotations

DEVICE_CHOICES = ("auto", "cuda", "mps", "cpu")


def pick_device(pref: str | None = "auto"):
    """Return a ``torch.device`` for ``pref``.

    ``"auto"`` (or None/""): cuda if available, else Apple's mps, else cpu.
    An explicit choice that is not available raises ``TrainingError`` with a message
    saying what is available. Strings such as ``"cuda:1"`` are passed through.
    """
    import torch

    from mtlrec.errors import TrainingError

    p = (pref or "auto").strip().lower()
    if p == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if _mps_available():
            return torch.device("mps")
        return torch.device("cpu")
    base = p.split(":")[0]
    if base not in DEVICE_CHOICES:
        raise TrainingError(f"unknown device '{pref}'; choose one of {', '.join(DEVICE_CHOICES)}")
    if base == "cuda" and not torch.cuda.is_available():
        raise TrainingError(f"device '{pref}' was asked for but CUDA is not available here; "
                            f"available: {', '.join(available_devices())}. Use device 'auto' or 'cpu'")
    if base == "mps" and not _mps_available():
        raise TrainingError(f"device '{pref}' was asked for but Apple MPS is not available here; "
                            f"available: {', '.join(available_devices())}. Use device 'auto' or 'cpu'")
    return torch.device(p)


def _mps_available() -> bool:
    import torch
    mps = getattr(torch.backends, "mps", None)
    return bool(mps is not None and mps.is_available())


def available_devices() -> list[str]:
    """Device names usable here, best first (always ends with "cpu")."""
    import torch
    out = []
    if torch.cuda.is_available():
        out.append("cuda")
    if _mps_available():
        out.append("mps")
    out.append("cpu")
    return out


def describe_device(device) -> str:
    """Human-readable name, e.g. "cuda (NVIDIA H100)" or "cpu (2 threads)"."""
    import torch
    d = torch.device(device)
    if d.type == "cuda":
        try:
            return f"cuda ({torch.cuda.get_device_name(d)})"
        except Exception:  # pragma: no cover - driver oddities
            return "cuda"
    if d.type == "cpu":
        return f"cpu ({torch.get_num_threads()} threads)"
    return d.type
