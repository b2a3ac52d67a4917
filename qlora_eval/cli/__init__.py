"""The command line (L5): the only layer that reads argv and the environment."""
