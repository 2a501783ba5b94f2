"""Sweep-wide training options that are not searched (CLI flags -> SweepSpec.options -> session.options).

Kept free of torch so the CLI can offer the choices without importing it.
"""

PRECISIONS = ("auto", "fp32", "bf16", "fp16")  # resolved per device by trainables.core.device.resolve_precision
COMPILE_MODES = ("default", "reduce-overhead", "max-autotune")  # torch.compile modes
