"""Reading an uploaded order file and validating its rows: no database, no HTTP.

``reader`` turns a file into rows of canonical columns; ``validate`` normalizes and
checks one row at a time; ``result_files`` writes the three result files.
"""
