"""A stand-in for the Lingma binary: same command line, work-dir layout and protocol (docs/protocol.md §10).

It imports nothing from the proxy but `lingma_proxy.framing`. Test-only behaviour (deterministic
replies, scenarios and faults, `/sim/*` status pages) is driven by the environment:
LINGMA_SIM_SCENARIO, LINGMA_SIM_START_LOGGED_OUT, LINGMA_SIM_PASSWORD, LINGMA_SIM_DIALECT,
LINGMA_SIM_MAX_CONCURRENT, LINGMA_SIM_ACK_TIMEOUT_SEC (see settings.py).

Known differences from the real binary: `cache/user` is base64 JSON rather than AES-encrypted
(state.py), the login callback's values use plain base64 (auth.py), and the login page is local.
"""
