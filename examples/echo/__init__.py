"""
The echo example: every message comes back.
"""
