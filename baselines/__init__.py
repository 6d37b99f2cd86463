"""Compared methods that are not SemiVL."""
