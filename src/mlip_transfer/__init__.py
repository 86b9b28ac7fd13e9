"""Cross-functional and cross-element transfer learning for machine-learning interatomic potentials.

A reproducible replication of Huang et al., npj Comput. Mater. (2025), arXiv 2504.05565, and of
Röcken & Zavadlav, arXiv 2502.13522. See the repository README for the workflow.
"""

__version__ = "0.1.0"
