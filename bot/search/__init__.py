"""Rank passages for a question: query analysis, keyword and dense signals, fusion."""
