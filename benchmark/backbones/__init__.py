"""Backbones: where weights come from (registry) and where sub-layers live (anatomy)."""
from benchmark.backbones.anatomy import Anatomy, AttnSite, FFNSite, Proj, anatomy, core_of
from benchmark.backbones.registry import BACKBONES, build_model, get_backbone, load_tokenizer

__all__ = ["Anatomy", "AttnSite", "FFNSite", "Proj", "anatomy", "core_of", "BACKBONES", "build_model",
           "get_backbone", "load_tokenizer"]
