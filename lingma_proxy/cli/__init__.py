"""The subcommands of lingma_proxy.py other than serve, one module per job."""
