"""The web portal: server-rendered pages (Jinja2) over the control plane's own services.

Pages call the domain services in-process, exactly as the API routes do, with the signed-in
person's :class:`~controlplane.auth.principal.User`; sign-in is Keycloak's authorization code
flow with PKCE. Swedish and English come from the Babel catalogues in ``translations/``.
"""
