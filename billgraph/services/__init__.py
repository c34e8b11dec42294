"""Business rules. No GraphQL and no HTTP here: the CLI, the graph and (later) webhooks and the
scheduler call the very same functions. Services take a Database or a session and an
organization id; every read and write is confined to that organization."""
