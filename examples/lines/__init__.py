"""
The line-protocol example: an existing C{LineReceiver} served to browsers unchanged.
"""
