"""The hub's web server: portal pages, RSS/Atom feeds, the JSON API and search.

``hub.web.app.make_app`` builds one aiohttp application from the parts; each
part is a module with a ``setup(app)`` function that adds its routes. See
docs/portal.md.
"""
