"""The transfer stage (paper Table 1, Fig. 3): the four methods, CHGNet training, evaluation,
relaxation and hull errors.
"""
