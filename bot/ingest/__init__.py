"""Find interview files, parse them into sections and cut them into passages."""
