"""The curated article library: model, readers, canonical writer and linter."""
