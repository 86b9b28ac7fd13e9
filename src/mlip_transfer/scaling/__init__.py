"""The scaling-law stage (paper Fig. 6): validation error against training-set size.
"""
