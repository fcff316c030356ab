"""
The chat example: a room where every message reaches every member.
"""
