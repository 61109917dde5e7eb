"""The unified design space (space.py), its functional forms (one module each) and the named presets."""
from benchmark.methods import bottleneck, lowrank, prefix, prompt, unfreeze  # noqa: F401  (register the forms)
from benchmark.methods.space import FORMS, Method, Mod, method_from_dict, register_form

__all__ = ["FORMS", "Method", "Mod", "method_from_dict", "register_form"]
