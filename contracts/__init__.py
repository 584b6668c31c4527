"""The names every layer agrees on, and nothing else: no imports, no I/O.

`mtrec.contracts` is the bottom layer (contracts <- data <- models <- components
<- pipeline <- cli; serving sees only contracts). A feature, split, channel,
node, file or metric name written as a literal anywhere else is a review failure.
"""
