"""The model: network, typed card (which drives preprocessing), predictor, calibration and unlikeness.

- ``network``: ``AttentionNet``, a CNN encoder pooled by one learned attention query per class;
- ``card``: ``ModelCard``, validated on load; ``checkpoint``: a model directory (safetensors + card);
- ``preprocessing``: the one path from pixels to model input, built from the card;
- ``predictor``: ``Predictor`` → ``Prediction`` and ``Heatmap``;
- ``calibration``: temperatures and thresholds; ``unlikeness``: is this scan like the training data?
"""
