"""zoo-diffusion: DDPM and its fast samplers, as a zoo plugin."""
