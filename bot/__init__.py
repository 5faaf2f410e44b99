"""Career-advice partner: LINE and web chat answering from a curated article library."""
