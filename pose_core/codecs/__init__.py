"""Codecs: pure encode/decode of training targets and network outputs (heatmaps, AE tags, DARK)."""
