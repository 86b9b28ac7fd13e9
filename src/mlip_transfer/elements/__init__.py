"""Transfer across chemical elements (Si -> Ge) with DimeNet++: the sibling study.

Röcken & Zavadlav, J. Chem. Inf. Model. 2025 (arXiv 2502.13522). Modules, one job each:

* :mod:`~mlip_transfer.elements.stillinger_weber`: the SW reference potentials (matscipy);
* :mod:`~mlip_transfer.elements.sampling`: Langevin NVT reference frames (ASE), the shared
  Langevin set-up;
* :mod:`~mlip_transfer.elements.data`: the element datasets on disk (canonical frames);
* :mod:`~mlip_transfer.elements.graph`: periodic edges and triplets;
* :mod:`~mlip_transfer.elements.dimenet`: DimeNet++ from torch_geometric's blocks;
* :mod:`~mlip_transfer.elements.training`: force matching, energy shift, test errors;
* :mod:`~mlip_transfer.elements.md`: MD with learned models and the stability criteria;
* :mod:`~mlip_transfer.elements.structure`: RDF and ADF, and their distance from the reference;
* :mod:`~mlip_transfer.elements.experiments`: the experiments' tables and the study's numbers;
* :mod:`~mlip_transfer.elements.jobs`: one function per workflow job.
"""
