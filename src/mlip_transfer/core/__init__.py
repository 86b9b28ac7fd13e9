"""Infrastructure every stage shares: errors that name their place, per-rule logs, configuration
checks, provenance of outputs, the file registry, atomic writes, devices and checkpoints.
"""
