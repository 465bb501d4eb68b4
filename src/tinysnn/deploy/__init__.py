"""From a quantized run to a device: C99 code generation, host and Cortex-M7 builds, checks against
the simulator (``python -m tinysnn.deploy``; docs/deploy.md)."""
