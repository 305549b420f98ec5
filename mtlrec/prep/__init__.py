"""Preparation: validated raw tables -> a model-ready :class:`~mtlrec.dataset.PreparedDataset`.

``prepare(raw, spec, config, text_encoder=None, progress=None)``; options in :class:`PrepConfig`.
"""
from mtlrec.prep.config import PrepConfig


def prepare(raw, spec, config=None, *, text_encoder=None, progress=None, validation=None,
            release_input=False):
    """See :func:`mtlrec.prep.pipeline.prepare`."""
    from mtlrec.prep.pipeline import prepare as _prepare
    return _prepare(raw, spec, config, text_encoder=text_encoder, progress=progress, validation=validation,
                    release_input=release_input)


__all__ = ["PrepConfig", "prepare"]
