"""meshgate: the command line and process entry points that sit on top of the layers."""
