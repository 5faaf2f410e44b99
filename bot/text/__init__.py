"""Small Japanese text utilities shared by retrieval, safety and the dialogue."""
