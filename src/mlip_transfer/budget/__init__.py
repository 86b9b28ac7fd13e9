"""Data-budget estimate (issue 18): the error to expect at the full training size, from learning
curves on subsamples, with an interval, and whether transfer or scratch uses the data better."""
