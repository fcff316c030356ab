"""
Stress runs for sockjs-twisted, from the issue "Hard to break".

C{python stress/slow_reader.py}: clients that stop reading while the server pushes tens of
megabytes at them, on each streaming transport and through a broadcast; the server's memory
must stay bounded and everything must arrive, complete and in order, once they read again.

C{python stress/soak.py}: thousands of sessions opened and abandoned while a control session
echoes; every abandoned session must be reaped after the disconnect delay.

Both start the real server (C{python -m twisted sockjs}) as a subprocess serving the
factories in L{stress.servers}, on 127.0.0.1 and a port the kernel picks, and stop it by
its PID.  L{stress._client} holds what they share: the server process, C{/proc} sampling,
and small blocking SockJS clients over plain sockets (so that a test controls exactly when,
and whether, a client reads).
"""
