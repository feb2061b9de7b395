"""zoo-gan: generative adversarial networks behind the zoo's one interface."""
