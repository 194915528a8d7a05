"""Page assemblers: one function per dashboard page that reads through
``reporting.selectors`` (a fixed number of queries), computes with ``reporting.engine``
and lays the result out with ``reporting.charts``. Views call one of them and render.
"""
