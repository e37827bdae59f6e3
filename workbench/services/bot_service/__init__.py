"""The Bot Service: scheduled notebook bots, their run history, and promotions.

:mod:`.app` assembles the application; :mod:`.routes` holds its REST routes.
"""
