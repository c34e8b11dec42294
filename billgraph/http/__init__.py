"""The HTTP layer below GraphQL: middleware and API-key authentication."""
