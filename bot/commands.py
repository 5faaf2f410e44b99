"""Sub-commands that need the retrieval and answer stack, registered into the CLI lazily."""
