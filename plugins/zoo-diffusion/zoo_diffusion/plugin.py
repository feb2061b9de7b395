"""Hook implementations of zoo-diffusion."""
