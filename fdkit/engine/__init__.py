"""The engine: how f is evaluated.  Jitted loops (one body per quantity, compiled serial and
parallel), the Richardson driver, the numpy stencil evaluator and the ways a user's f is run."""
