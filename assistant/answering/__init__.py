"""Answers with citations: follow-up rewriting, relevance gate, generators, citation verification."""
