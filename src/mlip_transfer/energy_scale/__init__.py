"""The energy-scale stage (paper Figs. 1, 2): AtomRef fits (Eq. 2), correlation between
functionals, element importance, the MatPES check, ``diagnose``, and formation/hull energies.
"""
