"""The commands manage.py runs, one module each."""
