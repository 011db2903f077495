"""Plain helpers shared by the tests (importable as `helpers`: pyproject puts tests/ on the path).

Fixtures live in the conftest.py files; what a test imports by name lives here.
"""
