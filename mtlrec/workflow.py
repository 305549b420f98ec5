"""Glue between the dashboard and the library (no streamlit here).

Builds run configurations from the app's state, loads the sample workspace and
describes the device, so that the pages stay thin and the same logic is testable.
"""
from __future__ import annotations


def describe_device(pref: str = "auto") -> str:
    """The device training will use, in words: the GPU's name, "Apple MPS" or "CPU"."""
    try:
        from mtlrec.device import pick_device
        dev = pick_device(pref)
    except ImportError:
        import torch
        dev = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    import torch
    dev = torch.device(dev)
    if dev.type == "cuda":
        return f"GPU: {torch.cuda.get_device_name(dev)}"
    if dev.type == "mps":
        return "Apple GPU (MPS)"
    return "CPU"
