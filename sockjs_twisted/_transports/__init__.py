"""
The SockJS transports, one module per family, and the HTTP plumbing they share.
"""
