"""faceveil's tests, laid out like src/faceveil/ (tests/web/test_web.py tests faceveil.web).

tests/ and its folders are packages so that two test modules in different folders may share a
name; pyproject puts tests/ on sys.path, so `from conftest import ...` and `import gui_display`
work from every folder. tests/test_layout.py keeps the mirror honest.
"""
