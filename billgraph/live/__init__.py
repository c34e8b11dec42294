"""Live events: what committed writes announce, carried between processes and fanned out
to the subscribers of each."""
