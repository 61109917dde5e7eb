"""Backbones: where weights come from (registry), where sub-layers live (anatomy), the FPT wrapper and the
baselines' own architectures (lstm, vit). Imports nothing, so that planning a grid stays light."""
