"""The density stage (paper Fig. 5): relaxed densities against experiment.
"""
