"""The channel-agnostic conversation engine: (conversation id, message) -> Answer."""
