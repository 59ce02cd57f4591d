"""Turn ranked passages into an answer: citations, verbatim quotes, coverage and abstention."""
