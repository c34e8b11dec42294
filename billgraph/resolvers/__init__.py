"""Thin functions behind the fields: read arguments and context, call a loader or a service,
and turn results and business errors into schema types."""
