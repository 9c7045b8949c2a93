"""The shipped scenario files (package data)."""
