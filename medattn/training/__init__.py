"""Training, to the side of the scan → model → explain flow: the synthetic benchmark, datasets, training,
evaluation and data-parallel runs. The app never imports it."""
