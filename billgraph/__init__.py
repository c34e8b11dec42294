"""billgraph: a GraphQL gateway for prepaid credits and billing."""

__version__ = "0.1.0"
