"""``make shift``: a shift simulator. N simulated agents work real desks over HTTP and WebSocket
against a running stack with the emulators' time compressed, the platforms misbehave on a
schedule, a Celery worker is killed mid-shift, and at the end invariants are checked from the
database and the emulators' logs (docs/shift.md).

- :mod:`bench.shift.stack`: start (or find) the stack, kill its dial worker;
- :mod:`bench.shift.floor`: the agents, their platform identities and the leads of the shift;
- :mod:`bench.shift.desk`: one simulated agent (a browser's requests and socket, no browser);
- :mod:`bench.shift.script`: what each call does on the platform, in realistic proportions;
- :mod:`bench.shift.invariants`: the checks, runnable alone (``python -m bench.shift check``).
"""
