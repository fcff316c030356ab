"""
Runnable examples of sockjs-twisted.  Each one is a package with a C{server} module that
exposes C{factory} (an ordinary protocol factory, for C{twistd sockjs --factory}),
C{resource()} (its HTML page and its SockJS endpoint side by side in one resource tree)
and C{main()}:

    python -m examples.echo.server              # http://localhost:8081/
    python -m examples.chat.server tcp:8082     # any endpoint description

or, with the standard twistd plugin and no page:

    PYTHONPATH=. twistd -n sockjs --factory examples.echo.server.factory --prefix /echo
"""
