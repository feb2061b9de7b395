"""zoo-autoregressive: the autoregressive family of the zoo."""
