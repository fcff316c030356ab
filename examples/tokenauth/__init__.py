"""
The token-authentication example: the first message of a session is a token.
"""
