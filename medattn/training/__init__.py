"""Training, to the side of the scan → model → explain flow: datasets, augmentation, training, evaluation,
the robustness suite and data-parallel runs. The app imports only the robustness suite's seed and verdict
thresholds from it, to say what the card's figures mean; the synthetic benchmark is ``medattn.benchmark``."""
