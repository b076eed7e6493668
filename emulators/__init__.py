"""Local stand-ins for Ryng, Huawei CC-Gateway and Genesys GWS.

A separate process (``python -m emulators``), not a Django app: the product talks to it over real
HTTP exactly as it would talk to the vendors. See ``docs/emulators.md``.
"""
