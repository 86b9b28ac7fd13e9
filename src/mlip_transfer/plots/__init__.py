"""Figures. Each function returns a matplotlib Figure; :func:`save_figure` writes it."""
