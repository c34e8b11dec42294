"""API keys: the credentials partners call with."""
