"""The claims table: each claim of the two studies, what this run shows, and a verdict.

Modules, one job each:

* :mod:`~mlip_transfer.claims.verdicts`: the verdicts, the row type that enforces the rule
  "a flagged input is never a method's result", and the statistics the comparisons use;
* :mod:`~mlip_transfer.claims.energy_scale`, :mod:`~mlip_transfer.claims.table1`,
  :mod:`~mlip_transfer.claims.benchmarks`, :mod:`~mlip_transfer.claims.elements`: the claims
  of each stage, computed from that stage's results;
* :mod:`~mlip_transfer.claims.readers`: the result files of a run, read leniently (a stage the
  run did not make gives a row that says so, not an error);
* :mod:`~mlip_transfer.claims.render`: the table as markdown and HTML, and the README block;
* :mod:`~mlip_transfer.claims.jobs`: the ``claims_table`` job.

Nothing here imports torch or CHGNet: the job reads files that the other stages wrote.
"""
