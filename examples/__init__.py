"""
Runnable examples of sockjs-twisted.  Each one is a package with a C{server} module that
exposes C{factory} (an ordinary protocol factory, for C{twistd sockjs --factory}),
C{resource()} (its HTML page and its SockJS endpoint side by side in one resource tree)
and C{main()}:

    .venv/bin/python -m examples.echo.server 8081         # http://localhost:8081/
    .venv/bin/python -m examples.chat.server tcp:8082     # any endpoint description

or, with the standard twistd plugin and no page:

    PYTHONPATH=. .venv/bin/twistd -n sockjs --port 8081 \
        --factory examples.echo.server.factory --prefix /echo
"""
