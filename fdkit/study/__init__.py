"""The study that uses the library: problems with analytical gradients, the 1+N harness, the
error-vs-h sweep, the figures and the report.  Nothing in :mod:`fdkit`'s library imports it."""
