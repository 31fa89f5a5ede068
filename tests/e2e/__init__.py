"""A package (not a bare directory), so that the ``browser`` fixture's package scope ends
with these tests; see conftest.py."""
