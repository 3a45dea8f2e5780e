"""EMER scoring: the emotion wheels (`vocabulary`) and the MER metrics (`metrics`).

Shipped with the client distribution (`pip install ./clients`) so that `emer eval` runs without
the server; the server imports the same wheel vocabulary.
"""
