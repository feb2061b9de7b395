"""The core's own built-ins, registered through the same hooks as any plugin."""
