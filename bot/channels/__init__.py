"""Messaging channels (LINE, web chat) on top of the shared dialogue engine."""
