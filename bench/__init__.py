"""``make bench``: recctl's performance figures, each against its baseline in the same run.

Run ``python -m bench --help``. Not part of ``make test``: nothing here is a timed unit test.
"""
