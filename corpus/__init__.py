"""Stage 1: seed articles → paragraphs (one JSON line each)."""
