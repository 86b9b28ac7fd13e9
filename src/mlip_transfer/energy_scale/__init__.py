"""The energy-scale stage (paper Figs. 1, 2). Modules, one job each:

* :mod:`~mlip_transfer.energy_scale.compositions`: compositions as element amounts and fractions;
* :mod:`~mlip_transfer.energy_scale.atomref`: the AtomRef fit (Eq. 2) and the residual shift;
* :mod:`~mlip_transfer.energy_scale.chgnet_atomref`: a CHGNet model's AtomRef, shipped fits;
* :mod:`~mlip_transfer.energy_scale.refits`: each functional's refit beside the shipped fits;
* :mod:`~mlip_transfer.energy_scale.correlation`: correlation between functionals (Fig. 2b);
* :mod:`~mlip_transfer.energy_scale.importance`: element importance (Fig. 1c/1d);
* :mod:`~mlip_transfer.energy_scale.elemental_shift`: the MatPES elemental-shift check;
* :mod:`~mlip_transfer.energy_scale.diagnose`: a source model's energy scale against new labels;
* :mod:`~mlip_transfer.energy_scale.energies`: formation and convex-hull (decomposition) energies;
* :mod:`~mlip_transfer.energy_scale.hull_errors`: model vs reference formation/hull energies;
* :mod:`~mlip_transfer.energy_scale.jobs`: one function per workflow job.
"""
