"""zoo-vae: the variational autoencoder family of the zoo."""
