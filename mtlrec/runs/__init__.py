"""Run folders: their layout and writer (folder), loading (load), the library of runs (library), owners (access), and exports for people (report)."""
