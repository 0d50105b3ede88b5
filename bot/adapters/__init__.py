"""Concrete adapters for the ports in bot.ports; only bot.bootstrap imports them."""
