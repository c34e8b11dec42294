"""Schema extensions: authentication, error presentation, query limits."""
