"""The readers of known dataset formats (MovieLens, RecBole, Census-Income KDD): one module each.

:mod:`mtlrec.data.identify` recognises their files and calls these readers; a new format is a module here
plus its layout in the identification.
"""
