"""Console scripts. Each module is one command; ``common`` holds what they share."""
