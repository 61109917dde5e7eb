"""petl-bench engine: methods (the unified design space), backbones, tasks and training of one run."""
__version__ = "0.1.0"
