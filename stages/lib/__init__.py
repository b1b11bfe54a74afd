"""The shared library behind the stages: params, data, models, losses, training, plots, I/O."""
