"""The unified design space (space.py), its functional forms (one module each, registered through the
`petl_bench.forms` entry point like a plugin's) and the named presets."""
from benchmark.methods.space import FORMS, Form, Method, Mod, method_from_dict, register_form

__all__ = ["FORMS", "Form", "Method", "Mod", "method_from_dict", "register_form"]
