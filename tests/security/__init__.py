"""Security regression suite: every attack of issue 18 against real servers on loopback."""
