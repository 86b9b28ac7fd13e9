"""The data stage: the canonical dataset format, loaders of each source, the paper's filters,
the 8:1:1 split by material and the embedded default (surrogate) dataset.
"""
