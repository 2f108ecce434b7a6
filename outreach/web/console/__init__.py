"""The console: server-rendered pages for marketers and sales under ``/console``.

Views are thin: parse the form or query, call one service, render a template from
``templates/console/``. Sessions (a signed cookie, path ``/console``), Flask-Login,
the CSRF check and the security headers are all scoped to this blueprint, so the
public intake path never opens a session or runs console code. ``outreach.app`` registers it.
"""
