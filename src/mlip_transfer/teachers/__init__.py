"""The teacher stage: how far the potentials that label the surrogate data are from real DFT,
and from each other on the structures the transfer methods are tested on (the noise floor any
ranking of methods on surrogate labels must clear)."""
