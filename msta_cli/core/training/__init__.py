"""Training: optimisation, run directories, resumable state, the loop, distributed helpers."""
