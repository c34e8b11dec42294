"""The GraphQL layer: one sub-package per domain, mirroring the domain packages."""
