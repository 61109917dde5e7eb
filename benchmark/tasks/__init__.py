"""Tasks: one module per task family (bits, glue, …), registered through entry points."""
